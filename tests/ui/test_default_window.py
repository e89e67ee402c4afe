"""The window opens on the embedded default model, with no folder to pick."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from diffusion_studio.ui.main_window import MainWindow


def test_the_window_opens_on_the_embedded_model(qtbot, tmp_path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    # the window is up while the model loads off the GUI thread; Run waits for it, and so
    # does what needs the model's size (a file given at start, a crash-restore offer)
    assert (window.model is None and window.loader.busy) or window.model_name.text() != "emoji32"
    assert not window.actions.run.isEnabled()
    assert window.model_name.text() == "Loading the embedded model..."
    seen = []
    window.after_model(lambda: seen.append(window.model))
    assert seen == []
    qtbot.waitUntil(lambda: window.model is not None, timeout=10_000)
    assert seen == [window.model]
    assert window.model_name.text() == "emoji32"
    assert window.canvas.image_size == (32, 32)
    classes = [window.panel.class_box.itemText(i) for i in range(window.panel.class_box.count())]
    assert classes[0] == "unconditional" and "Smileys & Emotion" in classes and len(classes) == 10
    # a first run makes emoji of the model's default category, guided, not the weaker
    # unconditional samples
    request = window.panel.request()
    assert window.panel.class_box.currentText() == "Smileys & Emotion"
    assert request.class_label == window.model.class_index("Smileys & Emotion")
    assert request.guidance_scale > 1
    assert window.panel.guidance.isEnabled()
    assert window.actions.run.isEnabled()
    window.close()
