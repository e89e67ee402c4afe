"""A run as one object from the window to the disk: the CLI and the window write the same
files, an inpainting comes back whole, Cancel is never lost, the pacing and the budgets hold,
and no result is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QSettings, QTimer

from diffusion_studio.cli import main
from diffusion_studio.core.job import Job
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.record import read_record
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from diffusion_studio.core.result import Frame, RunResult, Trajectory
from diffusion_studio.ui import worker as worker_module
from diffusion_studio.ui.export_dialog import ExportOptions, export_entries
from diffusion_studio.ui.gallery import Gallery
from diffusion_studio.ui.main_window import MainWindow
from tests.ui.test_studio import run_and_wait


@pytest.fixture
def studio(qtbot, tmp_path, tiny_model_dir):
    """A window whose results go to tmp_path/outputs, as a person's go to their pictures."""
    windows = []

    def open_studio(outputs=tmp_path / "outputs"):
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        window = MainWindow(
            load_model(tiny_model_dir), settings=settings, load_default=False, outputs=outputs
        )
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield open_studio
    for window in windows:
        window.close()


def test_the_cli_and_the_window_write_the_same_bytes(qtbot, studio, tmp_path, tiny_model_dir):
    window = studio()
    window.panel.steps.setValue(4)
    window.panel.seed.setText("7")
    result = run_and_wait(qtbot, window)
    [written] = [p for p in result.written if p.name == "00001-7.png"]
    steps = export_entries(
        window.gallery.entries(), ExportOptions(tmp_path / "e", trajectory=".gif")
    )
    cli = tmp_path / "cli"
    argv = ["sample", "--model", str(tiny_model_dir), "--steps", "4", "--seed", "7", "--quiet"]
    assert main([*argv, "--outdir", str(cli), "--save-trajectory", str(cli / "t.gif")]) == 0
    assert (cli / "00001-7.png").read_bytes() == written.read_bytes()
    assert (cli / "t.gif").read_bytes() == next(p for p in steps if p.suffix == ".gif").read_bytes()


def test_an_inpainting_comes_back_whole_and_is_made_again_bit_for_bit(qtbot, studio, tmp_path):
    window = studio()
    window.panel.steps.setValue(4)
    window.panel.jump_n_sample.setValue(2)
    window.load_source(sample_images()[2])
    window.canvas.apply_preset("half")
    first = run_and_wait(qtbot, window)
    made = next(p for p in first.written if p.name.startswith("00001-0"))
    record = read_record(made)
    assert record.inpaint and np.array_equal(record.mask, window.canvas.mask)
    for how in ("drop", "open"):
        fresh = studio(outputs=tmp_path / f"outputs-{how}")
        assert fresh.canvas.source is None and fresh.panel.request().num_inference_steps == 50
        if how == "drop":
            assert fresh.open_file(made)
        else:
            from PySide6.QtWidgets import QFileDialog

            QFileDialog.getOpenFileName = staticmethod(lambda *a, **k: (str(made), ""))
            fresh.open_image()
        assert np.array_equal(fresh.canvas.source, first.job.source)
        assert np.array_equal(fresh.canvas.mask, first.job.mask)
        again = run_and_wait(qtbot, fresh)
        assert np.array_equal(again.images, first.images)  # bit for bit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_network_runs_below_the_window_s_priority(qtbot, studio) -> None:
    """The inference thread and the torch threads it starts yield to the GUI thread."""

    def nice_of_threads() -> dict[int, tuple[str, int]]:
        found = {}
        for task in os.scandir(f"/proc/{os.getpid()}/task"):
            with open(f"{task.path}/stat") as stat, open(f"{task.path}/comm") as comm:
                found[int(task.name)] = (
                    comm.read().strip(),
                    int(stat.read().rsplit(")", 1)[1].split()[16]),
                )
        return found

    window = studio()
    window.panel.steps.setValue(3)
    run_and_wait(qtbot, window)
    threads = nice_of_threads()
    assert threads[threading.get_native_id()][1] == 0  # the GUI thread as it was
    niced = {nice for name, nice in threads.values() if name == "inference"}
    assert niced == {worker_module.INFERENCE_NICE} and worker_module.INFERENCE_NICE > 0


def test_cancel_right_after_run_stops_before_a_second_network_call(qtbot, studio) -> None:
    window = studio()
    window.panel.steps.setValue(100)
    for _ in range(20):
        with qtbot.waitSignal(window.sampler.cancelled, timeout=10_000) as blocker:
            window.run()
            window.sampler.cancel()
        assert blocker.args[0] <= 1
    assert window.gallery.count() == 0


def test_closing_the_window_mid_run_ends_at_once(qtbot, studio) -> None:
    window = studio()
    window.panel.steps.setValue(100)
    window.panel.batch.setValue(16)
    with qtbot.waitSignal(window.sampler.progress, timeout=10_000):
        window.run()
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 1.0
    assert not window.sampler._thread.isRunning()


def fake_result(job: Job, frames: int, size: int = 16, batch: int = 1) -> RunResult:
    trajectory = Trajectory()
    pixels = np.zeros((batch, size, size, 3), np.uint8)
    for i in range(frames):
        trajectory.add(Frame(i, frames, 999 - i, pixels, pixels))
    return RunResult(job, pixels, trajectory, 0.1, list(range(frames)))


def test_ten_thousand_fast_steps_are_drawn_at_most_at_screen_rate(qtbot, studio, monkeypatch):
    window = studio()
    job = window.current_job()

    def fast(model, job, on_frame, cancel, classifier, at):  # far faster than the screen: 5 kHz
        pixels = np.zeros((1, 16, 16, 3), np.uint8)
        for i in range(10_000):
            on_frame(Frame(i, 10_000, 0, pixels, pixels))
            time.sleep(0.0002)  # lets the GUI thread run, as a real network call does
        return fake_result(job, 2)

    monkeypatch.setattr(worker_module, "execute", fast)
    drawn = []
    window.sampler.frame.connect(drawn.append)
    started = time.monotonic()
    with qtbot.waitSignal(window.sampler.finished, timeout=30_000):
        window.sampler.start(window.model, job)
    elapsed = time.monotonic() - started
    print(f"{len(drawn)} frames drawn in {elapsed:.2f} s")
    assert 1 <= len(drawn) <= elapsed * 60 + 2, (len(drawn), elapsed)
    assert drawn[-1].frame.index == 9_999  # the last one is always drawn


def test_fifty_repaint_runs_at_batch_8_stay_under_the_session_budget(qtbot, tiny_model_dir):
    gallery = Gallery()
    qtbot.addWidget(gallery)
    model = load_model(tiny_model_dir)
    source = np.zeros((16, 16, 3), np.uint8)
    job = Job.prepare(SampleRequest(batch_size=8), model.info, image=source, mask_preset="half")
    gallery.budget_bytes = 64 * 1024 * 1024
    said = []
    gallery.said.connect(said.append)
    for _ in range(50):  # RePaint, 50 steps, jump 10, 10 resamples: 410 frames of 8 at 64x64
        gallery.add_result(fake_result(job, 410, size=64, batch=8))
        assert gallery.nbytes <= gallery.budget_bytes
    assert gallery.count() == 50 * 8 and said  # every image stays, and it was said
    assert len(gallery.entries()[0].result.trajectory.frames) > 1  # the newest keeps its steps


def test_export_all_of_four_results_with_seed_0_writes_four_sets(qtbot, studio, tmp_path):
    window = studio()
    window.panel.steps.setValue(3)
    for _ in range(4):
        run_and_wait(qtbot, window)
    written = export_entries(window.gallery.entries(), ExportOptions(tmp_path / "export"))
    assert sorted(p.name for p in written) == [f"0000{k}-0.png" for k in range(1, 5)]
    assert len({p.read_bytes() for p in written}) == 1  # the same job four times


CHILD = """
import sys, time
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from diffusion_studio.core.model_files import load_model
from diffusion_studio.ui.main_window import MainWindow

model, outputs, ini = sys.argv[1:4]
app = QApplication([])
window = MainWindow(load_model(model), settings=QSettings(ini, QSettings.Format.IniFormat),
                    load_default=False, outputs=Path(outputs))
window.panel.steps.setValue(3)
window.panel.seed.setText("4242")
window.sampler.finished.connect(lambda result: print("finished", flush=True))
window.run()
while True:
    app.processEvents()
    time.sleep(0.01)
"""


def test_a_kill_after_a_run_loses_nothing(qtbot, studio, tmp_path, tiny_model_dir) -> None:
    outputs = tmp_path / "outputs"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tiny_model_dir), str(outputs),
         str(tmp_path / "child.ini")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "finished"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    window = studio(outputs=outputs)
    qtbot.waitUntil(lambda: window.gallery.count() == 1, timeout=5000)
    assert window.gallery.entries()[0].request.seed == 4242


def test_quitting_with_results_only_in_memory_asks_first(qtbot, studio, tmp_path) -> None:
    window = studio()
    window.set_saving(False)
    window.panel.steps.setValue(3)
    run_and_wait(qtbot, window)
    asked = []
    window.ask_discard = lambda count: asked.append(count) or False
    window.close()
    assert asked == [1] and window.isVisible()  # kept open
    window.ask_discard = lambda count: True
    window.close()
    assert not window.isVisible()


def test_a_new_result_is_selected_alone(qtbot, studio) -> None:
    window = studio()
    window.panel.steps.setValue(3)
    run_and_wait(qtbot, window)
    window.panel.batch.setValue(2)
    run_and_wait(qtbot, window)
    selected = window.gallery.entries(selected_only=True)
    assert len(selected) == 2 and {e.result for e in selected} == {selected[0].result}


def test_the_window_fits_1024x700_and_run_is_always_in_sight(qtbot, studio) -> None:
    window = studio()
    window.canvas_panel.apply_preset("half")  # its side box shows too
    qtbot.wait(20)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 700, (hint.width(), hint.height())
    for width, height in ((1024, 700), (1280, 820)):
        window.resize(width, height)
        qtbot.wait(20)
        assert (window.width(), window.height()) == (width, height)
        for button in (window.panel.run_button, window.panel.cancel_button):
            assert not button.visibleRegion().isEmpty()  # not scrolled away


def test_the_first_model_freezes_what_came_before_it_for_the_collector(qtbot, studio) -> None:
    """A full collection must not walk torch's and diffusers' objects on the GUI thread."""
    import gc

    gc.unfreeze()
    studio()  # its model set: the panel lists the devices, and the collector's past is frozen
    assert gc.get_freeze_count() > 10_000
    gc.unfreeze()


def test_a_step_costs_the_status_bar_no_layout_and_the_plots_no_new_range(qtbot, studio) -> None:
    """What a frame changes is drawn in the window's paint: the run's status has a fixed size
    (a QLabel's new text laid the status bar out again, a QProgressBar repainted at once), and
    the plots' ranges are set once per run (pyqtgraph's auto-range measured them each frame)."""
    window = studio()
    status = window.run_status
    size = status.size()
    window._on_progress(5, 50, 8.0)
    assert status.text() == "step 5/50  8.0 steps/s  ETA 6 s" and status.size() == size
    window._on_progress(9999, 10000, 999.9)
    assert status.fontMetrics().horizontalAdvance(status.text()) < status.width()
    live = window.live
    live.start_run(list(range(99, -1, -10)))
    assert len(live.path._timesteps) == 0  # a new range is drawn in a turn of its own
    qtbot.waitUntil(lambda: len(live.path._timesteps) == 10, timeout=2000)
    for plot in (live.schedule, live.path):
        assert plot.getViewBox().autoRangeEnabled() == [False, False]
    ranges = live.path.getViewBox().viewRange()
    live.path.set_progress(5)
    assert live.path.getViewBox().viewRange() == ranges
    assert live.x_t.view.autoRangeEnabled() == [False, False]


def test_a_live_frame_draws_x0_in_a_turn_of_its_own(qtbot, studio) -> None:
    """x_t and x_0 of a live frame are drawn in two turns of the event loop (one turn drew
    both, the longest of a run); a finished run's frame shows both at once."""
    from diffusion_studio.ui.worker import compose

    window = studio()
    live = window.live
    trajectory = Trajectory()
    pixels = np.zeros((1, 16, 16, 3), np.uint8)
    for i, t in enumerate((90, 50, 10)):
        trajectory.add(Frame(i, 3, t, pixels, pixels))
    frames = trajectory.frames
    live.start_run([f.timestep for f in frames])
    live.show_frame(compose(frames[1]))
    assert live.x_t.image.image is not None and live.x0.image.image is None
    qtbot.waitUntil(lambda: live.x0.image.image is not None, timeout=2000)
    live.show_frame(compose(frames[2]))  # the last live frame, its x_0 still pending
    live.show_trajectory(trajectory)  # scrubbing: both at once, nothing pending
    assert not live._pending and not live._next_turn.isActive()


def test_a_run_s_end_draws_no_image_again_and_lays_nothing_out(qtbot, studio) -> None:
    """The live view's last frame is the result's: the end of a run only turns the slider and
    the fork bar on (drawing it again, and the fork bar appearing under the slider, made the
    end of a run its longest pause), and the panel comes back a turn later."""
    window = studio()
    window.panel.steps.setValue(4)
    live = window.live
    drawn, frames = [], []
    live.x_t.show_image = lambda image, draw=live.x_t.show_image: drawn.append(1) or draw(image)
    window.sampler.frame.connect(frames.append)
    geometry = live.scrub.geometry()
    probe = QTimer(singleShot=True, interval=0)  # the first turn after the result's
    probe.timeout.connect(lambda: at_the_end.append(window.sampler.running))
    at_the_end: list[bool] = []
    window.sampler.finished.connect(lambda _: probe.start())
    run_and_wait(qtbot, window)
    assert len(drawn) == len(frames) and live.trajectory is not None
    assert live.scrub.isEnabled() and live.fork_bar.isEnabled()
    assert live.scrub.geometry() == geometry
    assert at_the_end == [True] and window.panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: live.x0.image.image is not None, timeout=2000)


def test_the_plots_axes_keep_their_width_whatever_a_run_s_timesteps(qtbot, studio) -> None:
    """A new run's timesteps (9 or 999) change the path plot's labels, not its axis' width:
    pyqtgraph widened it, which laid the plot and the window out again at a run's start."""
    live = studio().live
    axis = live.path.getPlotItem().getAxis("left")
    live.path.set_path(list(range(9, -1, -1)))
    qtbot.wait(50)
    width = axis.width()
    live.path.set_path(list(range(999, -1, -111)))
    qtbot.wait(50)
    assert axis.width() == width


def test_a_queue_s_next_frame_waits_for_its_job_s_start(qtbot) -> None:
    """At a job's end the GUI takes the last frame from the mailbox, which may hold the next
    job's first one by then: it is not drawn under the job that ended (its start comes
    after), and the frames after it are."""
    sampler = worker_module.Sampler()
    try:
        shown = []
        sampler.frame.connect(shown.append)
        pixels = np.zeros((1, 8, 8, 3), np.uint8)
        sampler._worker._offer(Frame(0, 3, 90, pixels, pixels), 1)  # job 1's, job 0 on show
        assert shown == [] and sampler._worker.take_frame() is None
        sampler._jobs = (None, None)
        sampler._on_job_started(1)
        sampler._worker._offer(Frame(1, 3, 50, pixels, pixels), 1)
        assert [s.frame.index for s in shown] == [1]
    finally:
        assert sampler.shutdown()
