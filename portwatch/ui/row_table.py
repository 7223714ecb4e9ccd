"""The one way the window's row tables (listeners, connections) are set up."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QHeaderView, QTableView


def row_table(
    model: QAbstractItemModel, name: str, sort_column: int, order: Qt.SortOrder
) -> QTableView:
    """A sortable table of whole-row selection showing ``model``, sorted by
    ``sort_column``; ``name`` is what assistive technology calls it. Columns are resized
    by the user (the last stretches) and rows are never wrapped or numbered."""
    table = QTableView()
    table.setAccessibleName(name)
    table.setModel(model)
    table.setSortingEnabled(True)
    table.sortByColumn(sort_column, order)
    table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    return table
