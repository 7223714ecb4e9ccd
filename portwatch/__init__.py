"""portwatch: watch network ports and explain who is listening on them."""

__version__ = "0.1.0"
APP_NAME = "portwatch"
APP_ID = "io.github.portwatch.Portwatch"
