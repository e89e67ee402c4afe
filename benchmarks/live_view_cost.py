"""What one frame of the live view costs the GUI thread, piece by piece, with nothing else
running: each piece's change and the paint it causes, timed once per frame of a real run, a
pause between them as between a run's frames (so caches are as cold as in a run). Beside
benchmarks/gui_responsiveness.py, which times the event loop's gaps while the model runs, this
says which drawing the gaps are made of.

    xvfb-run -a python benchmarks/live_view_cost.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen: draw off it
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.ui.main_window import MainWindow
    from diffusion_studio.ui.worker import compose

    app = QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(None, device="cpu"), settings, load_default=False)
    window.resize(1400, 900)
    window.show()
    window.panel.steps.setValue(args.steps)
    window.panel.batch.setValue(args.batch)
    done: list = []
    window.sampler.finished.connect(done.append)
    window.run()
    while not done:
        app.processEvents()
        time.sleep(0.002)
    frames = done[0].trajectory.frames
    live = window.live
    live.start_run([frame.timestep for frame in frames])
    app.processEvents()
    pieces = {
        "x_t image": lambda shown, i: live.x_t.show_image(shown.x_t),
        "x_0 image": lambda shown, i: live.x0.show_image(shown.x0_pred),
        "x_t title": lambda shown, i: live.x_t.set_title(f"x_t: step {i + 1}, t = 999"),
        "caption (a QLabel)": lambda shown, i: live.caption.setText(f"step {i + 1}, t = 999"),
        "schedule marker": lambda shown, i: live.schedule.set_current(shown.frame.timestep),
        "path's done part": lambda shown, i: live.path.set_progress(i + 1),
        "run status": lambda shown, i: window._on_progress(i + 1, len(frames), 8.0),
        "scrub slider": lambda shown, i: live.scrub.setValue(i),
    }
    costs: dict[str, list[float]] = {name: [] for name in pieces}
    for index, frame in enumerate(frames):
        shown = compose(frame)
        for name, piece in pieces.items():
            started = time.perf_counter()
            piece(shown, index)
            app.processEvents()
            costs[name].append((time.perf_counter() - started) * 1000)
            time.sleep(0.03)
    print(f"{len(frames)} frames of a batch of {args.batch}, platform {app.platformName()}")
    for name, values in costs.items():
        values = np.array(values[2:])  # the first frames fill caches
        print(f"{name:<20} median {np.median(values):5.1f} ms  max {values.max():5.1f} ms")
    window.ask_discard = lambda count: True
    window.close()


if __name__ == "__main__":
    main()
