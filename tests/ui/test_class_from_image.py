"""An image opened for the emoji model: its class is chosen from the image, and said."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.main_window import MainWindow


def sample(name: str):
    return next(p for p in sample_images() if p.stem == name)


def test_opening_the_pizza_chooses_food_and_says_so(qtbot, tmp_path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(None), settings=settings, load_default=False)
    qtbot.addWidget(window)
    panel = window.panel
    assert panel.class_box.currentText() == "Smileys & Emotion"  # the model's default
    window.load_source(sample("pizza"))
    assert panel.class_box.currentText() == "Food & Drink"
    assert panel.request().class_label == 3
    assert not panel.class_note.isHidden()
    assert panel.class_note.text().startswith("From the image: Food & Drink, 0.")
    panel.class_box.setCurrentIndex(panel.class_box.findText("Flags"))  # the person decides
    assert panel.request().class_label == 2
    window.load_source(sample("fox-face"))
    assert panel.class_box.currentText() == "Animals & Nature"
    window.clear_source()
    assert panel.class_note.isHidden()
    window.close()


def test_a_model_of_other_classes_suggests_nothing(window) -> None:
    before = window.panel.class_box.currentIndex()
    window.load_source(sample("pizza"))
    assert window.panel.class_box.currentIndex() == before
    assert window.panel.class_note.isHidden()
