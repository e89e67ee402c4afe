"""The canvas with its tools: brush and eraser, size, overlay, the model's view, presets."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.masks import HALF_SIDES, PRESETS
from diffusion_studio.ui.canvas import MaskCanvas
from diffusion_studio.ui.state import StudioState


class CanvasPanel(QWidget):
    """The mask canvas between a row of painting tools and a row of RePaint's presets."""

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = MaskCanvas(state)
        self.mask_seed = 0
        self.brush = QToolButton(text="Brush", checkable=True, checked=True)
        self.brush.setToolTip("Paint what to regenerate (B); a right-drag erases")
        self.eraser = QToolButton(text="Eraser", checkable=True)
        self.eraser.setToolTip("Erase the mask: keep those pixels (E)")
        self.size = QSpinBox(minimum=1, maximum=512, value=self.canvas.brush_size)
        self.size.setToolTip("Brush size in model pixels ([ and ], or the mouse wheel)")
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=55)
        self.opacity.setToolTip("Overlay: how strongly the mask is tinted over the image")
        self.opacity.setMinimumWidth(50)  # a slider that can still be dragged in a narrow window
        self.opacity.setMaximumWidth(90)
        self.model_view = QCheckBox("Model's view")
        self.model_view.setToolTip("What the model is given: the known pixels; the rest grey")
        self.preset = QComboBox(toolTip="Preset: the RePaint paper's masks")
        self.preset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.preset.setMinimumContentsLength(9)
        for name, spec in PRESETS.items():
            self.preset.addItem(spec.label, name)
        self.side = QComboBox(toolTip="Which half is generated")
        self.side.addItems(HALF_SIDES)
        # its place is kept while hidden: choosing Half puts nothing where Apply was
        policy = self.side.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.side.setSizePolicy(policy)
        self.side.setCurrentText("right")
        self.apply = QPushButton("Apply", toolTip="Apply the preset to the mask")
        self.reroll = QPushButton("Re-roll", toolTip="Another random mask of this kind (Ctrl+R)")
        self.caption = QLabel(wordWrap=True)

        tools = QHBoxLayout()
        for widget in (
            self.brush,
            self.eraser,
            QLabel("Size"),
            self.size,
            self.opacity,
            self.model_view,
        ):
            tools.addWidget(widget)
        tools.addStretch(1)
        presets = QHBoxLayout()
        for widget in (self.preset, self.side, self.apply, self.reroll):
            presets.addWidget(widget)
        presets.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(presets)
        layout.addWidget(self.caption)

        self.brush.clicked.connect(lambda: self.set_eraser(False))
        self.eraser.clicked.connect(lambda: self.set_eraser(True))
        self.size.valueChanged.connect(self.canvas.set_brush_size)
        self.canvas.brush_changed.connect(self.size.setValue)
        self.opacity.valueChanged.connect(lambda v: self.canvas.set_overlay_opacity(v / 100))
        self.model_view.toggled.connect(self.canvas.set_model_view)
        self.apply.clicked.connect(lambda: self.apply_preset(self.preset.currentData()))
        self.reroll.clicked.connect(self.reroll_preset)
        self.preset.currentIndexChanged.connect(self._on_preset_choice)
        self._on_preset_choice()

    def set_eraser(self, erasing: bool) -> None:
        self.canvas.erasing = erasing
        self.brush.setChecked(not erasing)
        self.eraser.setChecked(erasing)

    def apply_preset(self, preset: str) -> None:
        self.preset.setCurrentIndex(self.preset.findData(preset))
        self.canvas.apply_preset(preset, seed=self.mask_seed, side=self.side.currentText())

    def reroll_preset(self) -> None:
        """A new seed for the random presets, applied at once."""
        self.mask_seed += 1
        preset = self.preset.currentData()
        if not PRESETS[preset].random:
            preset = next(name for name, spec in PRESETS.items() if spec.random)
        self.apply_preset(preset)

    def _on_preset_choice(self) -> None:
        spec = PRESETS[self.preset.currentData()]
        self.side.setVisible(spec.sided)
        self.reroll.setEnabled(spec.random)
