"""The only code that touches psutil and other OS sources of socket tables."""
