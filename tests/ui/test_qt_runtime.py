"""The Qt runtime the studio stands on: the PySide6 6.12.0 refcount bug, and the window starting."""

from __future__ import annotations

import sys

from PIL import Image
from PySide6.QtWidgets import QLabel

from diffusion_studio.cli import main
from diffusion_studio.ui.app import MainWindow
from diffusion_studio.ui.display import display_problem


def test_void_qt_calls_keep_the_reference_count_of_none(qtbot) -> None:
    # PySide6-Essentials 6.12.0 on CPython 3.11 drops a reference to None on every Qt call that
    # returns nothing; a few thousand calls later the process aborts with "none_dealloc".
    label = QLabel()
    qtbot.addWidget(label)
    label.setText("warm-up")
    before = sys.getrefcount(None)
    for i in range(20_000):
        label.setText("x" if i % 2 else "y")
    # the bug loses one reference per call (-20,000); unrelated objects move it by a few
    assert abs(sys.getrefcount(None) - before) < 100


def test_the_window_starts(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert "Diffusion Studio" in window.windowTitle()


def test_no_display_is_explained(monkeypatch) -> None:
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "no display" in display_problem()
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_problem() is None


def test_diffusion_studio_without_a_command_opens_the_window(qapp, monkeypatch) -> None:
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.cli import main

    seen = []

    def look(app) -> int:  # instead of blocking in the event loop (quitting it would end
        # every later test's loop too): note the windows shown, then return as exec() would
        seen.extend(w for w in app.topLevelWidgets() if w.isVisible())
        return 0

    monkeypatch.setattr(QApplication, "exec", look)
    assert main([]) == 0
    assert any("Diffusion Studio" in w.windowTitle() for w in seen)
    for widget in seen:
        widget.close()


def test_a_file_given_alone_opens_the_window_with_it(monkeypatch, tmp_path) -> None:
    opened = []
    monkeypatch.setattr("diffusion_studio.ui.app.run", lambda files=(): opened.append(files) or 0)
    picture = tmp_path / "picture.png"
    Image.new("RGB", (8, 8)).save(picture)
    assert main([str(picture)]) == 0
    assert main(["gui", str(picture), str(picture)]) == 0
    assert main([]) == 0
    assert opened == [[str(picture)], [str(picture), str(picture)], []]
