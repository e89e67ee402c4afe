"""Number and choice fields that a scrolling wheel passes over: a wheel over a spin box, a
combo box or a slider that has no keyboard focus scrolls the panel it lies in, and never
changes the field's value (Qt's default turns Spacing from leading to quadratic as the panel
is scrolled past it). A click or Tab gives the field focus; then the wheel changes it."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollArea,
    QScrollBar,
    QWidget,
)

FIELD_TYPES = (QAbstractSpinBox, QComboBox, QAbstractSlider)


class WheelGuard(QObject):
    """The event filter: an unfocused field's wheel event goes to the scroll area around it
    (or, with none, to no one), never to the field."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget):
            return super().eventFilter(watched, event)
        if watched.hasFocus():
            return False
        scroll = watched.parentWidget()
        while scroll is not None and not isinstance(scroll, QAbstractScrollArea):
            scroll = scroll.parentWidget()
        if scroll is not None:  # Qt would not pass a synthetic event on: hand it over here
            QApplication.sendEvent(scroll.viewport(), event)
        return True


def guard_wheel(root: QWidget) -> WheelGuard:
    """Guard every field under `root`: it takes focus by a click or Tab, not by the wheel,
    and an unfocused field passes the wheel to the scroll area it lies in."""
    guard = WheelGuard(root)
    for kind in FIELD_TYPES:
        for field in root.findChildren(kind):
            if isinstance(field, QScrollBar):  # the scroll's own bar scrolls, as it should
                continue
            field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            field.installEventFilter(guard)
    return guard


class FieldsScroll(QScrollArea):
    """The settings' vertical scroll: as wide as its fields need, now and after any change
    (a longer name, another model's options), so that none is ever cut off at the side."""

    def __init__(self, fields: QWidget) -> None:
        super().__init__(widgetResizable=True)
        self.setWidget(fields)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        scrollbar = self.verticalScrollBar().sizeHint().width()
        needed = self.widget().minimumSizeHint().width() + scrollbar + 2 * self.frameWidth()
        return QSize(max(hint.width(), needed), hint.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the dock asks again how narrow this may be
        return super().eventFilter(watched, event)
