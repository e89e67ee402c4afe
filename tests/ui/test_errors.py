"""Errors a person can read: the whole message, in sight above the studio, until dismissed."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication

LONG = (
    "Could not import the checkpoint: the state dict holds input_blocks.1.1.qkv.weight of "
    "shape (768, 256, 1) where the flags make (1536, 512, 1); the checkpoint is of another "
    "model than the one chosen (try the 256x256 unconditional preset, or give the flags it "
    "was trained with: --num-channels 256 --num-head-channels 64 --attention-resolutions "
    "32,16,8 --resblock-updown --use-scale-shift-norm) - the end of a long message"
)


def test_a_failed_import_shows_its_whole_message_until_dismissed(qtbot, window) -> None:
    window.resize(1024, 700)
    window._importing = type("Closed", (), {"close": lambda self: None})()
    window._on_import_failed(LONG.removeprefix("Could not import the checkpoint: "))
    banner = window.error
    assert banner.isVisible() and banner.text() == LONG  # all of it, not cut off
    assert banner.message.wordWrap()
    assert banner.geometry().width() <= window.width()
    # time passes, other messages come and go: it stays
    window.statusBar().showMessage("Model tiny loaded", 10)
    qtbot.wait(50)
    for timer in window.findChildren(QTimer):
        if timer.isActive() and timer.isSingleShot():
            timer.timeout.emit()
    assert banner.isVisible() and banner.text() == LONG
    banner.copy.click()
    assert QGuiApplication.clipboard().text() == LONG
    banner.dismiss.click()
    assert not banner.isVisible()


def test_a_failed_run_is_in_the_banner(window) -> None:
    window._on_failed("CUDA out of memory: lower the batch (8) or the resolution")
    assert window.error.isVisible() and "lower the batch (8)" in window.error.text()


def test_the_banner_is_in_sight_on_the_forward_process_tab(qtbot, window) -> None:
    window.tabs.setCurrentIndex(1)
    window.show_error("Could not open the model: config.json is not JSON")
    qtbot.waitUntil(window.error.isVisible)
    assert window.error.isVisible()
    assert window.error.visibleRegion().boundingRect().width() > 100


def test_a_file_name_is_shown_as_written_not_as_markup(window) -> None:
    window.show_error("<b>bold</b>.png does not exist or is not a file")
    shown = window.error.message.text().replace("\u200b", "")  # break points after slashes
    assert shown == "<b>bold</b>.png does not exist or is not a file"
    assert window.error.text() == shown
    assert window.error.message.textFormat().name == "PlainText"
