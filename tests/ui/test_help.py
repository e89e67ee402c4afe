"""Help: the run's update rule for the panel's settings, the keyboard shortcuts, the README and
the model card, each in a page of its own; a model card cannot make the page read a device."""

from __future__ import annotations

import shutil

from PySide6.QtGui import QAction

from diffusion_studio.core.model_files import load_model
from diffusion_studio.ui.help import HelpPage


def trigger(window, text: str) -> HelpPage:
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if a.text() == text)
    assert isinstance(action, QAction)
    action.trigger()
    pages = [p for p in window.findChildren(HelpPage) if p.isVisible()]
    assert len(pages) == 1, [p.windowTitle() for p in pages]
    return pages[0]


def test_what_this_run_does_follows_the_panel(qtbot, window) -> None:
    panel = window.panel
    panel.buttons["ddim"].setChecked(True)
    panel.eta_box.setValue(0.35)
    page = trigger(window, "What this run does")
    assert page.windowTitle() == "What this run does"
    text = page.markdown()
    assert "DDIM" in text and "0.35" in text and "eq. 12" in text
    panel.buttons["ddpm"].setChecked(True)
    page.close()
    text = trigger(window, "What this run does").markdown()
    assert "Algorithm 2" in text and "0.35" not in text


def test_the_shortcuts_page_lists_the_menus_keys(window) -> None:
    text = trigger(window, "Keyboard shortcuts").markdown()
    assert "Run" in text and "Ctrl+Return" in text
    assert "Undo" in text and "Ctrl+Z" in text
    assert "Ctrl + mouse wheel" in text  # the gestures no menu shows


def test_the_readme_opens_offline(window) -> None:
    text = trigger(window, "README").markdown()
    assert "Diffusion Studio" in text and "diffusion-studio sample" in text


def test_the_model_card_is_the_folder_s_readme(qtbot, tmp_path, tiny_model_dir) -> None:
    """Its pictures come from regular files inside the model's folder, and from nowhere else
    (a card naming /dev/zero or a person's files reads nothing)."""
    from PySide6.QtCore import QSettings, QUrl
    from PySide6.QtGui import QImage, QTextDocument

    from diffusion_studio.ui.main_window import MainWindow

    folder = tmp_path / "models" / "carded"
    shutil.copytree(tiny_model_dir, folder)
    QImage(4, 4, QImage.Format.Format_RGB32).save(str(folder / "inside.png"))
    picture = tmp_path / "outside.png"
    QImage(4, 4, QImage.Format.Format_RGB32).save(str(picture))
    outside = ["../../outside.png", str(picture), picture.as_uri()]
    pictures = " ".join(f"![x]({name})" for name in ["inside.png", *outside])
    (folder / "README.md").write_text(f"# The tiny card\n\nTrained on nothing.\n\n{pictures}\n")
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(folder), settings=settings, load_default=False)
    qtbot.addWidget(window)
    window.show()
    page = trigger(window, "Model card")
    assert page.windowTitle() == "Model card: tiny"
    assert "Trained on nothing." in page.markdown()
    document, kind = page.text.document(), QTextDocument.ResourceType.ImageResource
    assert not QImage(document.resource(kind, QUrl("inside.png"))).isNull()
    for name in outside:
        loaded = document.resource(kind, QUrl(name))
        assert loaded is None or QImage(loaded).isNull(), name
    window.close()


def test_a_model_without_a_card_says_so(window) -> None:
    assert "has no model card" in trigger(window, "Model card").markdown()
