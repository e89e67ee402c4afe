"""The studio as a person uses it: paint, presets, undo, run, cancel, failures, export, close."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.masks import MASK_PRESETS, preset_mask
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.export_dialog import ExportOptions, export_entries
from diffusion_studio.ui.live_view import RUNNING

RUN_TIMEOUT_MS = 30_000


def canvas_point(window, x: float, y: float) -> QPoint:
    """The widget point over image pixel (x, y)."""
    point = window.canvas.widget_point(x + 0.5, y + 0.5)
    return QPoint(round(point.x()), round(point.y()))


def test_a_mouse_drag_paints_the_mask_where_the_cursor_went(qtbot, window) -> None:
    canvas = window.canvas
    canvas.set_brush_size(1)
    assert not canvas.has_mask
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, 2, 3))
    for x in range(3, 13):
        qtbot.mouseMove(canvas, canvas_point(window, x, 3))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, 12, 3))
    mask = canvas.mask
    assert mask[3, 2:13].all()  # the row the cursor went along
    assert mask.sum() == 11  # and nothing else
    # a right-drag erases
    qtbot.mousePress(canvas, Qt.MouseButton.RightButton, pos=canvas_point(window, 5, 3))
    qtbot.mouseRelease(canvas, Qt.MouseButton.RightButton, pos=canvas_point(window, 5, 3))
    assert not canvas.mask[3, 5] and canvas.mask.sum() == 10


@pytest.mark.parametrize("preset", MASK_PRESETS)
def test_each_preset_fills_the_canvas_as_the_engine_makes_it(window, preset) -> None:
    window.canvas_panel.apply_preset(preset)
    side = window.canvas_panel.side.currentText()
    expected = preset_mask(preset, window.canvas.image_size, seed=0, side=side)
    assert np.array_equal(window.canvas.mask, expected)
    if preset in ("wide", "thin"):
        window.canvas_panel.reroll_preset()  # a new random mask of the same kind
        assert not np.array_equal(window.canvas.mask, expected)


def test_undo_and_redo(window) -> None:
    canvas = window.canvas
    canvas.apply_preset("half")
    half = canvas.mask
    canvas.invert()
    assert np.array_equal(canvas.mask, ~half)
    window.actions.undo.trigger()
    assert np.array_equal(canvas.mask, half)
    window.actions.undo.trigger()
    assert not canvas.has_mask
    assert not window.actions.undo.isEnabled()
    window.actions.redo.trigger()
    window.actions.redo.trigger()
    assert np.array_equal(canvas.mask, ~half)
    canvas.clear_mask()  # a new change drops what could be redone
    assert not canvas.can_redo


def run_and_wait(qtbot, window, start=None):
    """Start a run (Run, or `start`) and wait until it is through: its result, once the
    window is idle again."""
    with qtbot.waitSignal(window.sampler.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        (start or window.actions.run.trigger)()
    qtbot.waitUntil(lambda: not window.sampler.running, timeout=RUN_TIMEOUT_MS)
    return blocker.args[0]


def test_a_full_run_finishes_and_the_gallery_grows(qtbot, window) -> None:
    window.panel.steps.setValue(8)
    window.panel.batch.setValue(2)
    frames, handles = [], []
    window.sampler.frame.connect(frames.append)
    scrub = window.live.scrub  # idle while the run goes, its handle follows the steps
    window.sampler.frame.connect(lambda _: handles.append((scrub.value(), scrub.isEnabled())))
    captions, titles = set(), []  # a step's words in the pane's scene: no relayout per frame
    window.sampler.frame.connect(lambda _: captions.add(window.live.caption.text()))
    window.sampler.frame.connect(lambda _: titles.append(window.live.x_t.label.text))
    result = run_and_wait(qtbot, window)
    assert handles == [(shown.frame.index, False) for shown in frames]
    assert captions == {RUNNING}
    assert len(titles) == len(frames) and all(
        f"step {shown.frame.index + 1} / 8," in title for shown, title in zip(frames, titles)
    )
    assert window.gallery.count() == 2
    assert result.images.shape == (2, 16, 16, 3)
    assert frames and frames[-1].frame.index == 7  # the last step was drawn
    assert "finished" in window.run_status.text()
    assert window.actions.run.isEnabled() and not window.actions.cancel.isEnabled()
    assert len(result.trajectory.frames) == 8 and window.live.scrub.isEnabled()
    window.live.scrub.setValue(0)  # scrubbing shows the first recorded step
    assert "step 1 / 8" in window.live.caption.text()


def test_inpainting_keeps_the_known_pixels(qtbot, window) -> None:
    assert window.load_source(sample_images()[0])
    window.canvas_panel.apply_preset("half")
    window.panel.steps.setValue(6)
    window.panel.jump_n_sample.setValue(2)
    result = run_and_wait(qtbot, window)
    assert result.job.inpaint
    known = ~window.canvas.mask
    assert np.array_equal(result.images[0][known], window.canvas.source[known])


@pytest.fixture
def slow_model(window):
    """The window's model, made to take 30 ms per network call, counting the calls."""
    model = window.model
    calls = []
    forward = model._forward

    def slow(x_t, t, labels):
        calls.append(t)
        time.sleep(0.03)
        return forward(x_t, t, labels)

    model._forward = slow
    yield calls
    model._forward = forward


def test_cancel_stops_within_one_step(qtbot, window, slow_model) -> None:
    window.panel.steps.setValue(200)
    with qtbot.waitSignal(window.sampler.cancelled, timeout=RUN_TIMEOUT_MS) as blocker:
        window.actions.run.trigger()
        qtbot.waitUntil(lambda: len(slow_model) >= 5, timeout=RUN_TIMEOUT_MS)
        at_cancel = len(slow_model)
        window.actions.cancel.trigger()
    assert blocker.args[0] <= at_cancel + 1
    assert len(slow_model) <= at_cancel + 1
    assert window.gallery.count() == 0 and window.actions.run.isEnabled()
    assert "cancelled" in window.run_status.text()


def test_a_failing_model_shows_the_message_and_run_works_again(qtbot, window) -> None:
    forward = window.model._forward

    def broken(x_t, t, labels):
        raise RuntimeError("the weights are damaged")

    window.model._forward = broken
    with qtbot.waitSignal(window.sampler.failed, timeout=RUN_TIMEOUT_MS):
        window.actions.run.trigger()
    assert window.error.isVisible() and "the weights are damaged" in window.error.text()
    assert window.actions.run.isEnabled()
    window.model._forward = forward
    window.panel.steps.setValue(3)
    run_and_wait(qtbot, window)
    assert not window.error.isVisible() and window.gallery.count() == 1


def test_out_of_memory_is_a_message(qtbot, window) -> None:
    def oom(x_t, t, labels):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    forward, window.model._forward = window.model._forward, oom
    with qtbot.waitSignal(window.sampler.failed, timeout=RUN_TIMEOUT_MS):
        window.actions.run.trigger()
    window.model._forward = forward
    assert "out of memory" in window.error.text() and "batch" in window.error.text()


def drop_file(window, path: Path) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_export_then_drop_back_restores_the_settings(qtbot, window, tmp_path) -> None:
    panel = window.panel
    panel.buttons["ddpm"].setChecked(True)
    panel.steps.setValue(5)
    panel.seed.setText("4242")
    panel.batch.setValue(2)
    panel.class_box.setCurrentIndex(panel.class_box.findText("square"))
    panel.guidance.setValue(2.5)
    result = run_and_wait(qtbot, window)
    entries = window.gallery.entries()
    written = export_entries(entries, ExportOptions(tmp_path, upscale=3, trajectory=".gif"))
    second = tmp_path / "00001-4243.png"  # one run: one number, an image per seed
    assert second in written and (tmp_path / "00001-steps.gif").is_file()
    assert read_png_metadata(second)["request"]["seed"] == 4243
    # other settings, then the PNG dropped on the window brings its own back
    panel.buttons["ddim"].setChecked(True)
    panel.steps.setValue(40)
    panel.seed.setText("1")
    panel.batch.setValue(1)
    panel.guidance.setValue(7.0)
    drop_file(window, second)
    request = panel.request()
    assert request == SampleRequest.from_dict(read_png_metadata(second)["request"])
    assert (request.sampler, request.seed, request.class_label) == ("ddpm", 4243, 1)
    again = run_and_wait(qtbot, window)  # and Run makes the same image again
    np.testing.assert_allclose(again.images[0], result.images[1], atol=1)


def test_dropping_an_image_makes_it_the_source(window) -> None:
    drop_file(window, sample_images()[1])
    assert window.canvas.source is not None and window.canvas.source.shape == (16, 16, 3)
    assert "resized to 16x16" in window.canvas_panel.caption.text()


def test_a_file_named_that_is_not_there_is_a_message(window, tmp_path) -> None:
    assert not window.open_file(tmp_path / "gone.png")
    assert window.error.isVisible() and "gone.png does not exist" in window.error.text()
    assert window.canvas.source is None


def test_a_bad_model_folder_keeps_the_current_model(window, tmp_path) -> None:
    before = window.model
    assert not window.load_model_folder(tmp_path / "nowhere")
    assert window.model is before and "does not exist" in window.error.text()


def test_closing_mid_run_stops_the_thread(qtbot, window, slow_model) -> None:
    window.panel.steps.setValue(500)
    window.actions.run.trigger()
    qtbot.waitUntil(lambda: len(slow_model) >= 3, timeout=RUN_TIMEOUT_MS)
    thread = window.sampler._thread
    assert thread.isRunning()
    window.close()
    assert not thread.isRunning()
    assert len(slow_model) < 500
    assert not any(t.name == "inference" for t in threading.enumerate())


def test_settings_and_layout_persist(qtbot, tmp_path, tiny_model_dir) -> None:
    from PySide6.QtCore import QSettings

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.ui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "persist.ini"), QSettings.Format.IniFormat)
    first = MainWindow(load_model(tiny_model_dir), settings=settings, load_default=False)
    qtbot.addWidget(first)
    first.panel.buttons["ddpm"].setChecked(True)
    first.panel.steps.setValue(33)
    first.panel.seed.setText("99")
    first.canvas_panel.opacity.setValue(20)
    first.show()
    gallery_dock = first.gallery.parentWidget()
    top = Qt.DockWidgetArea.TopDockWidgetArea
    first.addDockWidget(top, gallery_dock)  # the person moved the gallery to the top
    first.close()
    second = MainWindow(load_model(tiny_model_dir), settings=settings, load_default=False)
    qtbot.addWidget(second)
    request = second.panel.request()
    assert (request.sampler, request.num_inference_steps, request.seed) == ("ddpm", 33, 99)
    assert second.canvas_panel.opacity.value() == 20
    second.show()
    assert second.dockWidgetArea(second.gallery.parentWidget()) == top  # the layout comes back
    assert second.settings.value("window/geometry") is not None
    second.close()


def test_menus_reach_the_presets_and_the_sample_images(window) -> None:
    actions = {a.text(): a for menu in window.menuBar().actions() for a in _all(menu.menu())}
    actions["Alternating lines"].trigger()
    assert window.canvas.mask[1::2].all() and not window.canvas.mask[::2].any()
    actions[sample_images()[2].stem].trigger()
    assert window.canvas.source is not None
    shortcuts = [s.toString() for s in window.actions.run.shortcuts()]
    assert "Ctrl+Return" in shortcuts and window.actions.cancel.shortcut().toString() == "Esc"
    assert window.actions.undo.shortcut().toString() == "Ctrl+Z"
    assert window.actions.redo.shortcut().toString() == "Ctrl+Shift+Z"


def _all(menu):
    for action in menu.actions():
        if action.menu() is not None:
            yield from _all(action.menu())
        else:
            yield action


def test_mask_files_come_in_with_an_explicit_invert(window, tmp_path) -> None:
    from diffusion_studio.core.masks import save_mask

    keep_left = np.zeros((16, 16), dtype=bool)
    keep_left[:, :8] = True  # a RePaint file: white = keep the left half
    save_mask(keep_left, tmp_path / "repaint.png")
    assert window.load_mask_file(tmp_path / "repaint.png", invert=True)
    assert np.array_equal(window.canvas.mask, ~keep_left)  # generate the right half
    assert window.load_mask_file(tmp_path / "repaint.png")  # the studio's own convention
    assert np.array_equal(window.canvas.mask, keep_left)
    assert not window.load_mask_file(tmp_path / "missing.png")
    assert "does not exist" in window.error.text()
