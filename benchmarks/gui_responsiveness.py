"""How responsive the window stays while the model runs on the CPU, with the live view on.

A 5 ms precise timer on the GUI thread records when it fires; the largest gap between two of
its ticks is the longest the window could not react (a click, a repaint). The bar: no gap over
16 ms (a 60 Hz frame) in six runs of each kind. It runs the studio's own window, sampler
thread and live view on the embedded default model.

    xvfb-run -a python benchmarks/gui_responsiveness.py      # on a screen (here a virtual one)
    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py --steps 100

The studio lets OpenMP's threads sleep at once when out of work (OMP_WAIT_POLICY=PASSIVE);
GNU OpenMP's own default, a spin before sleeping, is had back with GOMP_SPINCOUNT=300000. The
inference thread and its torch threads run at nice 19 (ui/worker.py, Linux), so the GUI thread
takes a core when it wakes. benchmarks/live_view_cost.py times the drawing of a frame piece
by piece; --culprits names the events that took longest on the GUI thread (their receiver and
type: a scene's repaint, a queued frame, a timer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(window, app, inpaint: bool) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    ticks: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    frames = []
    window.sampler.frame.connect(frames.append)
    done, failed = [], []
    window.sampler.finished.connect(done.append)
    window.sampler.failed.connect(failed.append)
    if inpaint:
        from diffusion_studio.core.resources import sample_images

        window.load_source(sample_images()[0])
        window.canvas_panel.apply_preset("half")
    else:
        window.clear_source()
    settled = time.perf_counter() + 0.3  # the image drawn where it is shown, before Run
    while time.perf_counter() < settled:
        app.processEvents()
        time.sleep(0.005)
    timer.start()
    started = time.perf_counter()
    window.run()
    while not done:
        if failed:
            raise SystemExit(f"the run failed: {failed[0]}")
        app.processEvents()
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    timer.stop()
    window.sampler.frame.disconnect(frames.append)
    window.sampler.finished.disconnect(done.append)
    window.sampler.failed.disconnect(failed.append)
    gaps = np.diff(ticks)
    calls = done[0].trajectory.frames[-1].total
    return {
        "max_gap_ms": float(gaps.max()),
        "p99_gap_ms": float(np.percentile(gaps, 99)),
        "median_gap_ms": float(statistics.median(gaps)),
        "frames_drawn": len(frames),
        "network_calls": calls,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--runs", type=int, default=6, help="runs of each kind (default 6)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval in seconds (default: the app's)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="the network's (default auto, as the window opens)",
    )
    parser.add_argument(
        "--culprits",
        action="store_true",
        help="time every event the GUI thread handles and list the longest (slows it a little)",
    )
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen: draw off it
    import threading

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    culprits: list[tuple[float, str]] = []
    gui_thread = threading.get_ident()

    class TimedApplication(QApplication):
        """Times each event's delivery on the GUI thread; nested deliveries are counted in
        their parent's."""

        depth = 0

        def notify(self, receiver, event) -> bool:
            if threading.get_ident() != gui_thread:
                return super().notify(receiver, event)
            TimedApplication.depth += 1
            started = time.perf_counter()
            try:
                return super().notify(receiver, event)
            finally:
                TimedApplication.depth -= 1
                took = (time.perf_counter() - started) * 1000
                if took > 1 and TimedApplication.depth == 0:
                    name = type(receiver).__name__
                    culprits.append((took, f"{name} {event.type().name}"))

    from diffusion_studio.ui.main_window import MainWindow
    from diffusion_studio.ui.models import load_model  # as the window loads one

    app = (TimedApplication if args.culprits else QApplication)([])
    if args.switch_interval:
        import sys

        sys.setswitchinterval(args.switch_interval)
    model = load_model(None, "cpu")  # the embedded default model
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(
        model, QSettings(str(settings_file), QSettings.Format.IniFormat), load_default=False
    )
    window.show()
    panel = window.panel
    panel.buttons["ddim"].setChecked(True)
    panel.steps.setValue(args.steps)
    panel.batch.setValue(args.batch)
    panel.class_box.setCurrentIndex(1)
    panel.guidance.setValue(args.guidance)
    panel.jump_n_sample.setValue(2)
    panel.precision.setCurrentIndex(panel.precision.findData(None if args.precision == "auto"
                                                             else args.precision))  # fmt: skip
    settled = time.perf_counter() + 1.0  # shown and painted once, as before a person's Run
    while time.perf_counter() < settled or not window.windowHandle().isExposed():
        app.processEvents()
        time.sleep(0.005)
    import torch

    print(
        f"model: {model.info.name}, {model.info.parameters / 1e6:.2f} M parameters, device cpu, "
        f"{torch.get_num_threads()} torch threads, platform {app.platformName()}"
    )
    print(f"DDIM {args.steps} steps, batch {args.batch}, guidance {args.guidance}, live view on, "
          f"{panel.precision.currentText()}")  # fmt: skip
    culprits.clear()  # the window's start is not a run's
    for inpaint in (False, True):
        kind = "RePaint (half, 2 resamples)" if inpaint else "sampling"
        results = [measure(window, app, inpaint) for _ in range(args.runs)]
        for result in results:
            print(
                f"{kind:<28} max gap {result['max_gap_ms']:6.1f} ms  p99 "
                f"{result['p99_gap_ms']:5.1f} ms  median {result['median_gap_ms']:4.1f} ms  | "
                f"{result['network_calls']} calls in {result['seconds']:.1f} s, "
                f"{result['frames_drawn']} frames drawn"
            )
        if args.culprits:  # the events over 1 ms, by kind: how many, their total, the longest
            kinds: dict[str, list[float]] = {}
            for took, what in culprits:
                kinds.setdefault(what, []).append(took)
            for what, times in sorted(kinds.items(), key=lambda kv: -max(kv[1]))[:8]:
                over = sum(t > 12 for t in times)
                print(f"  {what:<36} {len(times):5} over 1 ms, {sum(times):7.0f} ms in all, "
                      f"the longest {max(times):5.1f} ms, {over} over 12 ms")  # fmt: skip
            culprits.clear()
        worst = [r["max_gap_ms"] for r in results]
        print(f"{kind:<28} the largest gap of {args.runs} runs: {max(worst):.1f} ms (median of "
              f"the runs' largest {statistics.median(worst):.1f} ms)")  # fmt: skip
    import gc

    started = time.perf_counter()
    gc.collect()
    collected = (time.perf_counter() - started) * 1000
    print(f"a full garbage collection on the GUI thread: {collected:.1f} ms "
          f"({gc.get_freeze_count():,} objects frozen when the model came)")  # fmt: skip
    window.ask_discard = lambda count: True  # its images are throwaway: close without asking
    window.close()


if __name__ == "__main__":
    main()
