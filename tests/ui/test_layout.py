"""A layout that stays put: nothing moves under the mouse, the left panel keeps its width
across actions and restarts, and a 1024x700 window keeps its labels and sliders usable."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDockWidget

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.main_window import MainWindow
from tests.ui.test_studio import run_and_wait


def settings_width(window) -> int:
    return window.findChild(QDockWidget, "settings-dock").width()


def open_window(qtbot, settings_path, model=None, size=(1280, 820)) -> MainWindow:
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    window = MainWindow(model, settings=settings, load_default=model is None)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.model is not None, timeout=20_000)
    qtbot.wait(50)
    return window


def test_choosing_half_puts_nothing_where_apply_was(qtbot, window) -> None:
    tools = window.canvas_panel
    tools.preset.setCurrentIndex(tools.preset.findData("wide"))
    qtbot.wait(20)
    where = tools.apply.geometry()
    tools.preset.setCurrentIndex(tools.preset.findData("half"))
    qtbot.waitUntil(tools.side.isVisible)
    assert tools.apply.geometry() == where
    assert not tools.side.geometry().intersects(where)


def test_the_left_panel_keeps_its_width_across_actions_and_restarts(qtbot, tmp_path) -> None:
    model = load_model(None)  # the embedded model, its classifier, its long class names
    window = open_window(qtbot, tmp_path / "s.ini", model)
    width = settings_width(window)
    panel = window.panel
    window.load_source(next(p for p in sample_images() if p.stem == "pizza"))
    window.canvas_panel.apply_preset("half")  # RePaint: the longest summary in the Run bar
    panel.batch.setValue(64)
    panel.steps.setValue(1000)
    panel.classifier_scale.setValue(5.0)
    panel.buttons["ddpm"].setChecked(True)
    window.show_error("Could not open the model: /a/very/long/" + "folder/" * 30 + "config.json")
    qtbot.wait(50)
    assert "classifier scale 5" in panel.calls.text()
    assert settings_width(window) == width
    window.close()
    again = open_window(qtbot, tmp_path / "s.ini", model)
    assert settings_width(again) == width
    again.close()


def test_a_setting_restored_out_of_sight_is_said(qtbot, tmp_path) -> None:
    model = load_model(None)
    first = open_window(qtbot, tmp_path / "s.ini", model, size=(1024, 700))
    first.panel.classifier_scale.setValue(5.0)
    first.panel.steps.setValue(80)
    first.close()
    window = open_window(qtbot, tmp_path / "s.ini", model, size=(1024, 700))
    said = window.statusBar().currentMessage()
    assert "Settings of the last start:" in said
    assert "classifier scale 5" in said and "steps 80" in said
    assert "classifier scale 5" in window.panel.calls.text()  # the Run bar, always in sight
    window.close()


def test_at_1024x700_the_gallery_labels_and_the_overlay_slider_are_whole(qtbot, window) -> None:
    window.resize(1024, 700)
    window.panel.steps.setValue(2)
    window.panel.batch.setValue(12)  # more than the strip shows: its scroll bar is there
    run_and_wait(qtbot, window)
    qtbot.wait(50)
    gallery = window.gallery
    assert gallery.horizontalScrollBar().isVisible()
    for row in range(3):
        cell = gallery.visualItemRect(gallery.item(row))
        assert cell.height() >= 96 + gallery.fontMetrics().height()  # thumbnail and label
        assert gallery.viewport().rect().contains(cell), (cell, gallery.viewport().rect())
    assert window.canvas_panel.opacity.width() >= 50
