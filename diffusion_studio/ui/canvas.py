"""The mask canvas: the source image shown large, and the inpainting mask painted over it.

The canvas works at the model's resolution, so what is painted is exactly what the model sees:
a 32x32 image fills the widget as 32x32 blocks (nearest-neighbour scaling). The mask follows
the project's convention (core/masks.py): True = generate, shown tinted; False = keep.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from diffusion_studio.core.images import to_rgb
from diffusion_studio.core.masks import invert_mask, preset_mask
from diffusion_studio.ui.state import StudioState

MAX_UNDO = 100
MASK_TINT = (255, 64, 160)  # magenta: not a colour emoji or photos are full of


class MaskCanvas(QWidget):
    """Paint (left button), erase (right button, or the eraser tool), zoom (Ctrl + wheel).

    The source and the mask are the StudioState's: the canvas shows them and edits the mask
    (undoably); a stroke is drawn on a copy and given to the state when the button is released.
    """

    brush_changed = Signal(int)

    def __init__(self, state: StudioState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(256, 256)
        self.state = state or StudioState()
        self._stroke: np.ndarray | None = None  # the mask being painted, until release
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self.brush_size = max(1, min(self.image_size) // 8)
        self.erasing = False
        self.overlay_opacity = 0.55
        self.model_view = False
        self.zoom = 1.0
        self._stroke_value: bool | None = None
        self._last_pixel: QPointF | None = None
        self._hover: QPointF | None = None
        self.state.source_changed.connect(self.update)
        self.state.mask_changed.connect(self.update)
        self.state.model_changed.connect(self._on_model)

    # --- state --------------------------------------------------------------------------

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the model's images, which the canvas edits."""
        return self.state.image_size

    @property
    def _size(self) -> tuple[int, int]:
        return self.state.image_size

    @property
    def _mask(self) -> np.ndarray:
        return self._stroke if self._stroke is not None else self.state.mask

    @property
    def source(self) -> np.ndarray | None:
        """The source image, (H, W, C) uint8 at the model's size, or None."""
        return self.state.source

    @property
    def mask(self) -> np.ndarray:
        """The inpaint mask, (H, W) bool, True = generate (a copy)."""
        return self.state.mask

    @property
    def has_mask(self) -> bool:
        return self.state.has_mask

    def _on_model(self, model: object) -> None:
        if self._undo and self._undo[-1].shape != self.image_size:  # another size: start over
            self._undo.clear()
            self._redo.clear()
            self.brush_size = max(1, min(self.image_size) // 8)
        self.update()

    def set_source(self, image: np.ndarray | None) -> None:
        """Show a source image (H, W, C) uint8 at the model's size; None clears it."""
        self.state.set_source(image, self.state.caption)

    def set_mask(self, mask: np.ndarray, by_hand: bool | None = False) -> None:
        """Replace the mask (undoable); (H, W), nonzero = generate. `by_hand`: see
        StudioState.set_mask (a preset, a fill or a file is not)."""
        mask = np.asarray(mask) != 0
        if mask.shape != self._size:
            raise ValueError(f"the mask is {mask.shape}, the canvas {self._size}")
        self._remember()
        self.state.set_mask(mask, by_hand)

    def fill(self) -> None:
        self.set_mask(np.ones(self._size, dtype=bool))

    def clear_mask(self) -> None:
        self.set_mask(np.zeros(self._size, dtype=bool))

    def invert(self) -> None:
        self.set_mask(invert_mask(self._mask), by_hand=None)

    def apply_preset(self, preset: str, seed: int = 0, side: str = "right") -> None:
        self.set_mask(preset_mask(preset, self._size, seed=seed, side=side))

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.state.mask)
        self.state.set_mask(self._undo.pop())
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.state.mask)
        self.state.set_mask(self._redo.pop())
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def set_brush_size(self, size: int) -> None:
        self.brush_size = int(np.clip(size, 1, max(self._size)))
        self.brush_changed.emit(self.brush_size)
        self.update()

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.update()

    def set_model_view(self, on: bool) -> None:
        """Show what the model is given: the known pixels only, the rest grey."""
        self.model_view = on
        self.update()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = float(np.clip(zoom, 0.25, 8.0))
        self.update()

    def _remember(self) -> None:
        self._undo.append(self.state.mask)
        del self._undo[:-MAX_UNDO]
        self._redo.clear()

    # --- geometry -----------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates: centred, aspect kept, zoomed."""
        height, width = self._size
        scale = min(self.width() / width, self.height() / height) * self.zoom
        w, h = width * scale, height * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def pixel_at(self, position: QPointF | QPoint) -> QPointF:
        """Image coordinates (x, y), in pixels and fractions of one, of a widget position."""
        rect = self.image_rect()
        height, width = self._size
        return QPointF(
            (position.x() - rect.x()) / rect.width() * width,
            (position.y() - rect.y()) / rect.height() * height,
        )

    def widget_point(self, x: float, y: float) -> QPointF:
        """The widget position of image coordinates (x, y), e.g. a pixel's centre x + 0.5."""
        rect = self.image_rect()
        height, width = self._size
        return QPointF(rect.x() + x / width * rect.width(), rect.y() + y / height * rect.height())

    # --- painting the mask --------------------------------------------------------------

    def _stamp(self, start: QPointF, end: QPointF, value: bool) -> None:
        """A round brush of brush_size pixels dragged from start to end (image coordinates):
        every pixel whose centre lies within the radius of the segment."""
        height, width = self._size
        # a 1-pixel brush still paints a connected line: reach the centres of touched pixels
        radius = max(self.brush_size / 2, 0.71)
        ax, ay, bx, by = start.x(), start.y(), end.x(), end.y()
        x0, x1 = (
            max(0, int(np.floor(min(ax, bx) - radius))),
            min(width, int(np.ceil(max(ax, bx) + radius)) + 1),
        )
        y0, y1 = (
            max(0, int(np.floor(min(ay, by) - radius))),
            min(height, int(np.ceil(max(ay, by) + radius)) + 1),
        )
        if x0 >= x1 or y0 >= y1:
            return
        ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
        dx, dy = bx - ax, by - ay
        along = ((xs - ax) * dx + (ys - ay) * dy) / max(dx * dx + dy * dy, 1e-12)
        along = np.clip(along, 0.0, 1.0)
        near = (xs - ax - along * dx) ** 2 + (ys - ay - along * dy) ** 2 <= radius**2
        if self._stroke is not None:
            self._stroke[y0:y1, x0:x1][near] = value

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        erase = self.erasing != (button == Qt.MouseButton.RightButton)
        self._remember()
        self._stroke = self.state.mask
        self._stroke_value = not erase
        pixel = self.pixel_at(event.position())
        self._stamp(pixel, pixel, self._stroke_value)
        self._last_pixel = pixel
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pixel = self.pixel_at(event.position())
        self._hover = pixel
        if self._stroke_value is not None and self._last_pixel is not None:
            self._stamp(self._last_pixel, pixel, self._stroke_value)
            self._last_pixel = pixel
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._stroke_value is None or self._stroke is None:
            return
        stroke, self._stroke = self._stroke, None
        self._stroke_value = None
        self._last_pixel = None
        self.state.set_mask(stroke, by_hand=True)

    def leaveEvent(self, event: object) -> None:
        self._hover = None
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self.zoom * 1.25**steps)
        else:
            self.set_brush_size(self.brush_size + int(np.sign(steps)))

    # --- drawing ------------------------------------------------------------------------

    def composite(self) -> np.ndarray:
        """What the canvas shows, (H, W, 3) uint8: the source with the mask tinted over it."""
        height, width = self._size
        if self.state.source is None:  # a light checkerboard says "no image: plain generation"
            checker = ((np.arange(height)[:, None] // 4 + np.arange(width) // 4) % 2) * 24 + 208
            base = np.repeat(checker[..., None], 3, axis=2).astype(np.float32)
        else:
            base = to_rgb(self.state.source).astype(np.float32)
        if self.model_view:
            base[self._mask] = 128.0
            return base.astype(np.uint8)
        tint = np.asarray(MASK_TINT, dtype=np.float32)
        alpha = self.overlay_opacity
        base[self._mask] = base[self._mask] * (1 - alpha) + tint * alpha
        return np.round(base).astype(np.uint8)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        pixels = self.composite()
        height, width = self._size
        image = QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_RGB888)
        rect = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, image)
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(rect.adjusted(-1, -1, 0, 0))
        if self._hover is not None:  # the brush outline under the cursor
            radius = self.brush_size / 2 * rect.width() / width
            centre = self.widget_point(self._hover.x(), self._hover.y())
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.drawEllipse(centre, radius, radius)
            painter.setPen(QPen(QColor(0, 0, 0), 0.75))
            painter.drawEllipse(centre, radius + 1.5, radius + 1.5)
        painter.end()
