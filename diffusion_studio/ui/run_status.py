"""The run's state in the status bar: a bar that fills step by step with "step k/N, steps per
second, ETA" written in it, and how the run ended once it has.

One widget of a fixed size, painted in the window's own paint: a new step costs no layout
of the status bar and no paint of its own (QProgressBar.setValue repaints at once, outside
the window's paint, and a QLabel's new text lays the status bar out again)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QWidget

WIDEST = "step 10000/10000  999.9 steps/s  ETA 9999 s"  # the longest text it holds


class RunStatus(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._share: float | None = None  # the bar's filled share; None: no bar
        metrics = self.fontMetrics()
        self.setFixedSize(QSize(metrics.horizontalAdvance(WIDEST) + 16, metrics.height() + 6))

    def text(self) -> str:
        return self._text

    def set_progress(self, done: int, total: int, rate: float) -> None:
        """A step of a run: the bar filled to done / total, and the rate and ETA."""
        eta = (total - done) / rate if rate > 0 else 0.0
        self._share = done / total if total else 0.0
        self._text = f"step {done}/{total}  {rate:.1f} steps/s  ETA {eta:.0f} s"
        self.update()

    def set_text(self, text: str) -> None:
        """A state without a bar: how a run ended, or nothing."""
        self._share, self._text = None, text
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        if self._share is not None:
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.setBrush(palette.color(QPalette.ColorRole.Base))
            painter.drawRoundedRect(frame, 3, 3)
            filled = QRectF(frame.left(), frame.top(), frame.width() * self._share, frame.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight).lighter(150))
            painter.drawRoundedRect(filled, 3, 3)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._text)
