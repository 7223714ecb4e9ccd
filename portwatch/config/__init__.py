"""Plain files the user could read and edit: watch list, trust list, settings."""
