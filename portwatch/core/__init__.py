"""Pure logic: no Qt, no psutil, no sqlite3, no file I/O."""
