"""Entry script frozen by PyInstaller (portwatch.spec): the same entry point as the installed
``portwatch`` commands, so a frozen build behaves like ``pip install portwatch``."""

import sys

from portwatch.__main__ import gui_main

if __name__ == "__main__":
    # gui_main passes the arguments through (minus the -psn_ one old macOS Finder adds), so
    # `portwatch scan --json` works from the frozen build, and no command opens the desktop app.
    sys.exit(gui_main())
