"""The Compare tab: the settings to sweep (rows by columns) over the sampler panel's request,
the network calls that costs, and a grid of the cells that follows the run live (each cell's
x_t and predicted x_0), then each cell's distance to the reference."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.workflows import AXES
from diffusion_studio.ui.gallery import to_qimage
from diffusion_studio.ui.worker import Shown

CELL = 72  # pixels of each image of a cell
DEFAULTS = {"rows": ("eta", "0, 0.5, 1"), "columns": ("steps", "10, 20, 50, 100")}


class CellView(QFrame):
    """One cell: its labels, x_t beside the predicted x_0 (the result once it is done), and
    its distance to the reference. Right-click: make it the reference."""

    chosen_as_reference = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, frameShape=QFrame.Shape.StyledPanel)
        self.title = QLabel(title, wordWrap=True)
        self.x_t, self.x0 = QLabel(), QLabel()
        for image in (self.x_t, self.x0):
            image.setFixedSize(CELL, CELL)
            image.setStyleSheet("background: #eee;")
        self.note = QLabel("waiting")
        images = QHBoxLayout()
        images.addWidget(self.x_t)
        images.addWidget(self.x0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(images)
        layout.addWidget(self.note)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)

    def show_images(self, x_t: np.ndarray, x0: np.ndarray | None = None) -> None:
        for label, image in ((self.x_t, x_t), (self.x0, x0)):
            if image is None:
                label.clear()
                continue
            pixmap = QPixmap.fromImage(to_qimage(image)).scaled(
                CELL, CELL, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )  # fmt: skip
            label.setPixmap(pixmap)

    def _menu(self, position) -> None:
        menu = QMenu(self)
        menu.addAction("Use as the reference", self.chosen_as_reference.emit)
        menu.exec(self.mapToGlobal(position))


class CompareView(QWidget):
    """Settings to sweep, the cost, Run and Export, and the grid of cells."""

    run_requested = Signal()
    export_requested = Signal()
    reference_chosen = Signal(int)  # the index of the cell
    changed = Signal()  # the axes or their values

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = {}
        self.values = {}
        form = QGridLayout()
        for row, (which, (name, text)) in enumerate(DEFAULTS.items()):
            box = QComboBox()
            for key, (_, _, label) in AXES.items():
                box.addItem(label, key)
            box.setCurrentIndex(box.findData(name))
            edit = QLineEdit(text, placeholderText="values, separated by commas")
            edit.setToolTip(
                "The values of this setting, separated by commas: steps 10, 20, 50; eta 0, "
                "0.5, 1; sampler ddpm, ddim; spacing leading, trailing, linspace, quadratic"
            )
            box.currentIndexChanged.connect(self.changed)
            edit.textChanged.connect(self.changed)
            form.addWidget(QLabel(which.capitalize()), row, 0)
            form.addWidget(box, row, 1)
            form.addWidget(edit, row, 2)
            self.axis[which], self.values[which] = box, edit
        form.setColumnStretch(2, 1)
        self.cost = QLabel(wordWrap=True)
        self.run_button = QPushButton("Run compare")
        self.run_button.setToolTip(
            "Every cell from the same x_T (the panel's seed), with the panel's other settings"
        )
        self.export_button = QPushButton("Export comparison...", enabled=False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cost, 1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.export_button)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.grid_host)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(scroll, 1)
        self.cells: list[CellView] = []
        self.run_button.clicked.connect(self.run_requested)
        self.export_button.clicked.connect(self.export_requested)

    def axes(self) -> dict[str, tuple[str, str]]:
        """{"rows": (axis, text), "columns": (axis, text)} as the person set them."""
        return {k: (self.axis[k].currentData(), self.values[k].text()) for k in self.axis}

    def set_cost(self, text: str) -> None:
        self.cost.setText(text)

    def show_table(self, rows: tuple[str, ...], columns: tuple[str, ...],
                   titles: list[tuple[int, int, str]]) -> None:  # fmt: skip
        """New cells, empty: (row, column, title) each, with the row and column labels."""
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.cells = []
        for c, label in enumerate(columns):
            self.grid.addWidget(QLabel(f"<b>{label}</b>"), 0, c + 1)
        for r, label in enumerate(rows):
            self.grid.addWidget(QLabel(f"<b>{label}</b>", wordWrap=True), r + 1, 0)
        for k, (r, c, title) in enumerate(titles):
            cell = CellView(title)
            cell.chosen_as_reference.connect(lambda k=k: self.reference_chosen.emit(k))
            self.grid.addWidget(cell, r + 1, c + 1)
            self.cells.append(cell)
        self.export_button.setEnabled(False)

    def show_frame(self, k: int, shown: Shown) -> None:
        cell = self.cells[k]
        cell.show_images(shown.x_t, shown.x0_pred)
        cell.note.setText(f"step {shown.frame.index + 1} / {shown.frame.total}")

    def show_result(self, k: int, image: np.ndarray) -> None:
        self.cells[k].show_images(image)
        self.cells[k].note.setText("done")

    def set_notes(self, notes: list[str]) -> None:
        for cell, note in zip(self.cells, notes):
            cell.note.setText(note)
        self.export_button.setEnabled(True)
