"""The window's other tasks: the Grow tab grows a picture press by press (each pass live,
what exists kept exactly, the stitched picture written with its record, a cancelled press
undone), and Enlarge and Colorize make pictures past the model's size and in colour."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.outpaint import read_outpaint
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.main_window import MainWindow
from tests.ui.test_studio import RUN_TIMEOUT_MS, run_and_wait


@pytest.fixture
def studio(qtbot, tmp_path, tiny_model_dir):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(tiny_model_dir), settings=settings, load_default=False,
                        outputs=tmp_path / "outputs")  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    window.panel.steps.setValue(3)
    window.panel.jump_n_sample.setValue(1)
    window.load_source(sample_images()[0])
    yield window
    window.close()


def press(qtbot, window, button) -> None:
    """A press of the Grow tab, waited through all its passes."""
    with qtbot.waitSignal(window.sampler.running_changed, timeout=RUN_TIMEOUT_MS):
        button.click()
    qtbot.waitUntil(lambda: window._grow_job is None and not window.sampler.running,
                    timeout=RUN_TIMEOUT_MS)  # fmt: skip


@pytest.mark.parametrize("method", ["passes", "multidiffusion"])
def test_the_grow_tab_grows_a_picture_press_by_press(
    qtbot, studio, tmp_path, monkeypatch, method
) -> None:
    window, view = studio, studio.grow_view
    source = window.state.source.copy()
    window.start_growing()
    assert window.tabs.currentWidget() is view and view.export_button.isEnabled() is False
    view.method.setCurrentIndex(view.method.findData(method))
    frames = []
    window.sampler.frame.connect(frames.append)
    press(qtbot, window, view.side_buttons["right"])
    first = window.growing.canvas.image.copy()
    assert first.shape == (16, 24, 3) and np.array_equal(first[:, :16], source)
    assert frames and view.picture.pixmap().width() == 24 * view.magnify.value()
    press(qtbot, window, view.side_buttons["bottom"])  # grown again from what it became
    grown = window.growing.canvas.image
    assert grown.shape == (24, 24, 3) and np.array_equal(grown[:16], first)
    assert window.gallery.count() == 0  # the passes are the tab's, not results of their own
    saved = sorted((tmp_path / "outputs").rglob("*.png"))
    assert len(saved) == 2  # each press's stitched picture, with the record of its passes
    record = read_outpaint(saved[-1], window.model.info)
    assert [g.describe() for g in record.growths] == ["right +0.5", "bottom +0.5"]
    view.undo_button.click()
    assert np.array_equal(window.growing.canvas.image, first)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "wide"), ""))  # fmt: skip
    view.export_button.click()
    assert read_outpaint(tmp_path / "wide.png", window.model.info).growths[0].side == "right"


def test_a_cancelled_press_leaves_the_picture_as_it_was(qtbot, studio) -> None:
    window, view = studio, studio.grow_view
    window.panel.steps.setValue(200)
    window.start_growing()
    window.sampler.frame.connect(lambda _: window.sampler.cancel())
    with qtbot.waitSignal(window.sampler.cancelled, timeout=RUN_TIMEOUT_MS):
        view.zoom_button.click()
    qtbot.waitUntil(lambda: not window.sampler.running, timeout=RUN_TIMEOUT_MS)
    assert window.growing is None and window._grow_job is None
    assert "as it was" in view.status.text() and view.zoom_button.isEnabled()


def test_enlarge_and_colorize_make_results_of_the_gallery(qtbot, studio) -> None:
    window = studio
    big = run_and_wait(qtbot, window, lambda: window.enlarge(2))
    assert big.images.shape == (1, 32, 32, 3) and window.gallery.count() == 1
    blocks = big.images[0].astype(float).reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
    assert np.abs(blocks - window.state.source).max() <= 1.0
    entry = window.gallery.current_entry()
    bigger = run_and_wait(qtbot, window, lambda: window._gallery_task(entry, "enlarge2"))
    assert bigger.images.shape == (1, 64, 64, 3)
    colour = run_and_wait(qtbot, window, window.colorize)
    assert colour.job.restore.operator == "luminance" and window.gallery.count() == 3
    labels = [window.gallery.item(i).text() for i in range(3)]
    assert labels == ["colour, seed 0", "2x, seed 0", "2x, seed 0"]


def test_growing_without_a_picture_says_what_to_do(qtbot, studio) -> None:
    window = studio
    window.clear_source()
    window.grow_view.side_buttons["left"].click()
    assert not window.sampler.running and window.growing is None
    assert "Open an image on the Studio tab first" in window.error.text()
    window.colorize()
    assert "Open an image first" in window.error.text()
