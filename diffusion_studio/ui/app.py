"""Start the studio: the QApplication and its main window."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from diffusion_studio.core.resources import resources_dir
from diffusion_studio.ui.autosave import default_root
from diffusion_studio.ui.main_window import APP_NAME, MainWindow
from diffusion_studio.ui.outputs import default_outputs

ORGANIZATION = "Diffusion Studio"
DESKTOP_FILE = "org.diffusionstudio.DiffusionStudio"
WM_CLASS = "diffusion-studio"


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


def run(files: Sequence[str] = ()) -> int:
    """Open the window (with `files`: images, or PNGs it exported) and run the event loop."""
    problem = display_problem()
    if problem:
        print(f"diffusion-studio: error: {problem}", file=sys.stderr)
        return 2
    # argv[0] names the window's WM_CLASS on X11, which the .desktop file's StartupWMClass
    # matches: the same name whether started as a script, with python -m or from the bundle
    app = QApplication.instance() or QApplication([WM_CLASS])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setDesktopFileName(DESKTOP_FILE)  # Wayland matches the window to its icon by this
    app.setWindowIcon(QIcon(str(resources_dir() / "icon.png")))
    window = MainWindow(autosave=default_root(), outputs=default_outputs())
    window.show()
    for path in files:  # after the default model has loaded: its size fits the image
        QTimer.singleShot(0, lambda path=path: window.open_file(path))
    return app.exec()
