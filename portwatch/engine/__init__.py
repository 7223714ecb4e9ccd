"""One monitoring tick without Qt: probe, diff, judge, record. Shared by the CLI and the GUI."""
