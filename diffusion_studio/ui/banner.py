"""The error banner: a failed open, import, conversion, run or write says its whole message
above the studio, and it stays there until the person dismisses it (or the next message, or
the next success of what failed, replaces it), never a status-bar line cut off at the window's
edge and gone in seconds."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


class ErrorBanner(QFrame):
    """Hidden until `show_message`; Copy puts the message on the clipboard, Dismiss hides it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="error-banner", visible=False)
        self.setStyleSheet(
            "#error-banner { background: #fdecee; border: 1px solid #b00020; border-radius: 3px; }"
            "#error-banner QLabel { color: #8a0019; }"
        )
        self.message = QLabel(wordWrap=True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # a file name is never markup
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # as wide as the window gives, never wider: a long path must not squeeze the panels
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._text = ""
        self.copy = QPushButton("Copy", toolTip="Copy the message")
        self.dismiss = QPushButton("Dismiss", toolTip="Hide the message")
        buttons = QVBoxLayout()
        buttons.addWidget(self.copy)
        buttons.addWidget(self.dismiss)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.message, 1)
        layout.addLayout(buttons)
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text()))
        self.dismiss.clicked.connect(self.clear)

    def show_message(self, text: str) -> None:
        self._text = text
        # a path has no spaces to wrap at: it may break after each slash (zero-width spaces,
        # for the eye only; Copy and text() give the message as it was)
        self.message.setText(text.replace("/", "/\u200b").replace("\\", "\\\u200b"))
        self.setVisible(True)

    def clear(self) -> None:
        self.setVisible(False)
        self._text = ""
        self.message.setText("")

    def text(self) -> str:
        return self._text
