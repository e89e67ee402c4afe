"""Start the studio: the QApplication and its main window."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from diffusion_studio import __version__

APP_NAME = "Diffusion Studio"


def display_problem() -> str | None:
    """Why a window cannot open here (no display on Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display found (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot "
        "open; the headless commands work: diffusion-studio sample --help"
    )


class MainWindow(QMainWindow):
    """The studio's main window (for now a placeholder over the working engine)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        label = QLabel(
            f"<h2>{APP_NAME}</h2><p>The engine and its command line are ready: "
            "<code>diffusion-studio sample --help</code>.</p>"
            "<p>The studio window (mask canvas, sampler panel, live view) comes next.</p>"
        )
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setTextFormat(Qt.TextFormat.RichText)
        self.setCentralWidget(label)
        self.resize(720, 420)


def run(argv: list[str] | None = None) -> int:
    """Open the window and run the event loop; returns the exit code."""
    problem = display_problem()
    if problem:
        print(f"diffusion-studio: error: {problem}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    window = MainWindow()
    window.show()
    return app.exec()
