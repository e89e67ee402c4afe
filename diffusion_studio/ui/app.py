"""Start the studio: the QApplication and its main window."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from diffusion_studio.core.resources import resources_dir
from diffusion_studio.ui.autosave import default_root
from diffusion_studio.ui.main_window import APP_NAME, MainWindow
from diffusion_studio.ui.outputs import default_outputs

ORGANIZATION = "Diffusion Studio"
DESKTOP_FILE = "org.diffusionstudio.DiffusionStudio"
WM_CLASS = "diffusion-studio"


def run(files: Sequence[str] = ()) -> int:
    """Open the window (with `files`: images, or PNGs it exported) and run the event loop.
    The command line asked display.window_problem first, before Qt was imported."""
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
        window.after_model(lambda path=path: window.open_file(path))
    return app.exec()
