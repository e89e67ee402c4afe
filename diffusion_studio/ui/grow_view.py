"""The Grow tab: outpainting that grows the picture past the model's size. A press of a side's
button extends the picture by a fraction of the model's size on that side, Zoom out shrinks it
into the centre and generates its border; each press is filled while the tab shows the pass
live, and the picture grows again from what it has become. The picture scrolls when it is
larger than the tab; Export writes the stitched PNG with the record of its passes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.canvas import MAX_EXTEND, MAX_ZOOM, SIDES, Growth
from diffusion_studio.ui.gallery import to_qimage

ARROWS = {"left": "◀ Left", "top": "▲ Top", "right": "Right ▶", "bottom": "Bottom ▼"}
METHOD_LABELS = {
    "multidiffusion": "MultiDiffusion (the whole canvas at once)",
    "passes": "Passes (a window after the other)",
}


class GrowView(QWidget):
    """The controls and the growing picture; the window's GrowMixin runs the passes."""

    grow_requested = Signal(object)  # Growth
    start_requested = Signal()  # begin again from the canvas's image
    undo_requested = Signal()
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_button = QPushButton(
            "Start from the canvas's image",
            toolTip="Begin a new picture to grow from the Studio tab's source image",
        )
        self.undo_button = QPushButton("Undo last growth", enabled=False)
        self.export_button = QPushButton("Export...", enabled=False)
        self.export_button.setToolTip("The stitched PNG, with the record of its passes")
        self.amount = QDoubleSpinBox(minimum=0.05, maximum=MAX_EXTEND, singleStep=0.25, value=0.5,
                                     decimals=2, suffix=" of the model's size")  # fmt: skip
        self.side_buttons = {side: QPushButton(ARROWS[side]) for side in SIDES}
        for side, button in self.side_buttons.items():
            button.setToolTip(f"Extend the picture on the {side} and generate the new strip")
            button.clicked.connect(lambda _=False, s=side: self._extend(s))
        self.zoom = QDoubleSpinBox(minimum=1.25, maximum=MAX_ZOOM, singleStep=0.25, value=2.0,
                                   decimals=2, suffix="x")  # fmt: skip
        self.zoom_button = QPushButton("Zoom out", toolTip="Shrink the picture into the centre "
                                       "and generate its border")  # fmt: skip
        self.zoom_button.clicked.connect(
            lambda: self.grow_requested.emit(Growth("zoom_out", self.zoom.value()))
        )
        self.method = QComboBox()
        for name, label in METHOD_LABELS.items():
            self.method.addItem(label, name)
        self.magnify = QSpinBox(minimum=1, maximum=16, value=6, suffix="x", toolTip="Display size")
        self.magnify.valueChanged.connect(lambda: self._draw())
        self.status = QLabel("Open an image on the Studio tab, then grow it here.", wordWrap=True)
        self.picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.scroll = QScrollArea(widgetResizable=True)
        self.scroll.setWidget(self.picture)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.start_button.clicked.connect(self.start_requested)
        self.undo_button.clicked.connect(self.undo_requested)
        self.export_button.clicked.connect(self.export_requested)

        sides = QGridLayout()
        sides.addWidget(self.side_buttons["top"], 0, 1)
        sides.addWidget(self.side_buttons["left"], 1, 0)
        sides.addWidget(self.side_buttons["right"], 1, 2)
        sides.addWidget(self.side_buttons["bottom"], 2, 1)
        sides.addWidget(QLabel("Extend by", alignment=Qt.AlignmentFlag.AlignCenter), 1, 1)
        controls = QHBoxLayout()
        extend = QVBoxLayout()
        extend.addWidget(self.amount)
        extend.addLayout(sides)
        controls.addLayout(extend)
        zoom = QVBoxLayout()
        zoom.addWidget(self.zoom)
        zoom.addWidget(self.zoom_button)
        zoom.addStretch(1)
        controls.addLayout(zoom)
        rest = QVBoxLayout()
        rest.addWidget(QLabel("Fill by"))
        rest.addWidget(self.method)
        for button in (self.start_button, self.undo_button):
            rest.addWidget(button)
        rest.addStretch(1)
        controls.addLayout(rest)
        controls.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(QLabel("Show at"))
        bottom.addWidget(self.magnify)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(bottom)
        self._image: np.ndarray | None = None

    def _extend(self, side: str) -> None:
        self.grow_requested.emit(Growth("extend", round(self.amount.value(), 4), side))

    def show_canvas(self, image: np.ndarray | None, known: np.ndarray | None = None) -> None:
        """The growing picture (H, W, C) uint8; pixels not made yet (known False) checkered."""
        if image is not None and known is not None and not known.all():
            rows, cols = np.indices(known.shape)
            checks = np.where((rows // 2 + cols // 2) % 2 == 0, 200, 235).astype(np.uint8)
            image = np.where(known[..., None], image, checks[..., None]).astype(np.uint8)
        self._image = image
        self._draw()

    def _draw(self) -> None:
        if self._image is None:
            self.picture.clear()
            return
        scale = self.magnify.value()
        pixmap = QPixmap.fromImage(to_qimage(self._image))
        size = pixmap.size() * scale
        self.picture.setPixmap(pixmap.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                             Qt.TransformationMode.FastTransformation))  # fmt: skip

    def set_busy(self, busy: bool, has_picture: bool, finished: bool, can_undo: bool) -> None:
        for button in (*self.side_buttons.values(), self.zoom_button):
            button.setEnabled(not busy)
        self.start_button.setEnabled(not busy)
        self.method.setEnabled(not busy)
        self.undo_button.setEnabled(not busy and can_undo)
        self.export_button.setEnabled(not busy and has_picture and finished)
