"""Nothing painted is lost: the studio autosaves, and offers the work back after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.autosave import read_snapshot
from diffusion_studio.ui.main_window import MainWindow
from tests.ui.test_studio import canvas_point

# A studio in its own process: it opens an image, paints a stroke with the mouse, sets a seed,
# writes what it has (the truth to compare with) and then waits to be killed.
CHILD = """
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.resources import sample_images
from diffusion_studio.ui.main_window import MainWindow

model, root, truth = sys.argv[1:4]
app = QApplication([])
settings = QSettings(str(Path(truth).with_suffix(".ini")), QSettings.Format.IniFormat)
window = MainWindow(load_model(model), settings=settings, load_default=False, autosave=Path(root))
window.show()
QTest.qWaitForWindowExposed(window)
window.load_source(sample_images()[0])
canvas = window.canvas
canvas.set_brush_size(2)

def at(x, y):
    p = canvas.widget_point(x + 0.5, y + 0.5)
    return QPoint(round(p.x()), round(p.y()))

height, width = canvas.image_size
QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(0, height - 1))
for x in range(1, width):  # a diagonal, bottom left to top right
    QTest.mouseMove(canvas, at(x, (height - 1) * (width - 1 - x) // (width - 1)))
QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(width - 1, 0))
window.panel.seed.setText("4242")
np.savez(truth, mask=canvas.mask, source=canvas.source)
print("painted", flush=True)
app.exec()
"""


def snapshot_matches(root: Path, truth: dict[str, np.ndarray]) -> bool:
    for folder in root.glob("session-*"):
        snap = read_snapshot(folder)
        if (
            snap is not None
            and snap.mask is not None
            and np.array_equal(snap.mask, truth["mask"])
            and snap.request is not None
            and snap.request.seed == 4242
        ):
            return True
    return False


def test_kill_9_while_painting_then_restart_brings_the_work_back(qtbot, tmp_path, tiny_model_dir):
    root, truth_file = tmp_path / "autosave", tmp_path / "truth.npz"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tiny_model_dir), str(root), truth_file],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "painted"
        truth = dict(np.load(truth_file))
        assert truth["mask"].sum() > truth["mask"].shape[0]  # a stroke, not a dot
        deadline = time.monotonic() + 20
        while not snapshot_matches(root, truth):  # the autosave lands a moment after the stroke
            assert time.monotonic() < deadline, "the painted mask never reached the autosave"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    settings = QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        load_model(tiny_model_dir), settings=settings, load_default=False, autosave=root
    )
    qtbot.addWidget(window)
    offered = []
    window.autosave.ask = lambda snapshot: offered.append(snapshot) or True
    qtbot.waitUntil(lambda: window.canvas.has_mask, timeout=5000)
    assert len(offered) == 1
    assert np.array_equal(window.canvas.mask, truth["mask"])
    assert np.array_equal(window.canvas.source, truth["source"])
    assert window.panel.request().seed == 4242
    window.close()
    assert not list(root.glob("session-*"))  # restored, then closed cleanly: nothing left


@pytest.fixture
def studio(qtbot, tmp_path, tiny_model_dir):
    """Open a studio with autosave in tmp_path/autosave; returns a function that opens one."""
    windows = []

    def open_studio(ask=None):
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        window = MainWindow(
            load_model(tiny_model_dir),
            settings=settings,
            load_default=False,
            autosave=tmp_path / "autosave",
        )
        window.autosave.ask = ask or (lambda snapshot: pytest.fail("nothing should be offered"))
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield open_studio
    for window in windows:
        window.close()


def paint(qtbot, window) -> None:
    canvas = window.canvas
    height, width = canvas.image_size
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, 1, 1))
    qtbot.mouseMove(canvas, canvas_point(window, width - 2, height // 2))
    qtbot.mouseRelease(
        canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, width - 2, height // 2)
    )
    window.autosave.save_now()


def test_a_clean_close_leaves_nothing_to_restore(qtbot, studio, tmp_path) -> None:
    first = studio()
    paint(qtbot, first)
    assert read_snapshot(first.autosave.folder).mask.any()
    first.close()
    assert not list((tmp_path / "autosave").glob("session-*"))
    second = studio()  # its ask fails the test if anything is offered
    qtbot.wait(50)
    assert not second.canvas.has_mask


def test_a_studio_that_is_running_is_not_taken_for_a_crashed_one(qtbot, studio) -> None:
    running = studio()
    paint(qtbot, running)
    other = studio()
    qtbot.wait(50)
    assert other.autosave.left_behind() == []
    assert read_snapshot(running.autosave.folder).mask.any()


def test_declining_drops_that_work_only(qtbot, studio, tmp_path) -> None:
    root = tmp_path / "autosave"
    # two sessions that "crashed": copies of saved folders with no process holding their lock
    window = studio()
    window.load_source(sample_images()[1])
    paint(qtbot, window)
    saved = window.autosave.folder
    for name, saved_at in (("session-1-1", 100.0), ("session-2-2", 200.0)):
        copy = root / name
        copy.mkdir()
        for file in ("source.png", "mask.png", "state.json"):
            (copy / file).write_bytes((saved / file).read_bytes())
        state = (copy / "state.json").read_text().replace('"saved_at"', '"old"', 1)
        (copy / "state.json").write_text(state.replace("{", f'{{"saved_at": {saved_at},', 1))
    asked = []
    window.autosave.ask = lambda snapshot: asked.append(snapshot.folder.name) or False
    assert window.autosave.offer_restore() is False
    assert asked == ["session-2-2"]  # the newest first
    assert not (root / "session-2-2").exists() and (root / "session-1-1").exists()


def test_unreadable_autosave_files_are_not_a_crash(studio, tmp_path) -> None:
    broken = tmp_path / "autosave" / "session-9-9"
    broken.mkdir(parents=True)
    (broken / "state.json").write_text("{not json")
    (broken / "mask.png").write_bytes(b"not a png")
    window = studio()
    assert window.autosave.left_behind() == []
    assert read_snapshot(broken) is None


def test_restored_settings_come_back_whole(qtbot, studio) -> None:
    window = studio()
    request = SampleRequest(sampler="ddpm", num_inference_steps=17, seed=9, guidance_scale=2.0)
    window.panel.set_request(request)
    window.autosave.save_now()
    snap = read_snapshot(window.autosave.folder)
    assert snap.request.num_inference_steps == 17 and snap.request.sampler == "ddpm"
    assert snap.request.seed == 9


def test_an_autosave_folder_that_cannot_be_made_is_a_message(qtbot, tmp_path, tiny_model_dir):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        load_model(tiny_model_dir), settings=settings, load_default=False, autosave=blocked
    )
    qtbot.addWidget(window)
    window.canvas.fill()
    window.autosave.save_now()
    assert not window.error.isHidden() and window.error.text().startswith("Autosave failed")
    window.close()
