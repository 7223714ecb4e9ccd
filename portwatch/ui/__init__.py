"""QtWidgets and pyqtgraph live here and nowhere else."""
