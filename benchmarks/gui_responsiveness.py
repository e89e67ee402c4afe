"""How responsive the window stays while the model runs on the CPU, with the live view on.

A 5 ms precise timer on the GUI thread records when it fires; the largest gap between two of
its ticks is the longest the window could not react (a click, a repaint). The bar: no gap over
16 ms (a 60 Hz frame) in six runs of each kind. It runs the studio's own window, sampler
thread and live view on the embedded default model, in the event loop the window runs in,
from Run to half a second after the run's end (whose drawing counts: the gallery's new images,
the panel's fields back, the scrubber).

    xvfb-run -a python benchmarks/gui_responsiveness.py      # on a screen (here a virtual one)
    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py --steps 100

The studio lets OpenMP's threads sleep at once when out of work (OMP_WAIT_POLICY=PASSIVE);
GNU OpenMP's own default, a spin before sleeping, is had back with GOMP_SPINCOUNT=300000. The
inference thread and its torch threads run at nice 19 (ui/worker.py, Linux), so the GUI thread
takes a core when it wakes. benchmarks/live_view_cost.py times the drawing of a frame piece
by piece; --culprits names the events that took longest on the GUI thread (their receiver and
type: a scene's repaint, a queued frame, a timer) and the events that filled the largest gap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

AFTER_S = 0.5  # measured this long after a run's end


def measure(window, app, inpaint: bool, timeline: list | None = None) -> dict[str, float]:
    """One run from Run to AFTER_S after its end, in the event loop the window runs in (the
    end's drawing, the gallery's new thumbnail and the finished run's scrubber, counts)."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    frames = []
    window.sampler.frame.connect(frames.append)
    done, failed = [], []
    loop = QEventLoop()

    def ended(result) -> None:
        done.append(result)
        QTimer.singleShot(round(AFTER_S * 1000), loop.quit)

    def broke(message: str) -> None:
        failed.append(message)
        loop.quit()

    window.sampler.finished.connect(ended)
    window.sampler.failed.connect(broke)
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
    if timeline is not None:
        timeline.clear()
    timer.start()
    started = time.perf_counter()
    window.run()  # as a click on Run would, inside a turn of the loop: its time counts
    loop.exec()
    if failed:
        raise SystemExit(f"the run failed: {failed[0]}")
    seconds = time.perf_counter() - started - AFTER_S
    timer.stop()
    window.sampler.frame.disconnect(frames.append)
    window.sampler.finished.disconnect(ended)
    window.sampler.failed.disconnect(broke)
    gaps = np.diff(ticks) * 1000
    worst = int(np.argmax(gaps))
    calls = done[0].trajectory.frames[-1].total
    return {
        "max_gap_ms": float(gaps.max()),
        "p99_gap_ms": float(np.percentile(gaps, 99)),
        "median_gap_ms": float(statistics.median(gaps)),
        "frames_drawn": len(frames),
        "network_calls": calls,
        "seconds": seconds,
        "worst_at_s": ticks[worst] - started,
        "worst_events": [
            (at - ticks[worst], took, what)
            for at, took, what in (timeline or [])
            if at + took / 1000 > ticks[worst] and at < ticks[worst + 1]
        ],
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
    from PySide6.QtWidgets import QApplication, QGraphicsScene

    culprits: list[tuple[float, str]] = []
    timeline: list[tuple[float, float, str]] = []  # every top-level event: start, ms, what
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
                if TimedApplication.depth == 0:
                    name = type(receiver).__name__
                    if isinstance(receiver, QGraphicsScene) and receiver.views():
                        name += f" of {type(receiver.views()[0]).__name__}"
                    what = f"{name} {event.type().name}"
                    timeline.append((started, took, what))
                    if took > 1:
                        culprits.append((took, what))

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
        results = [
            measure(window, app, inpaint, timeline if args.culprits else None)
            for _ in range(args.runs)
        ]
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
            run = max(results, key=lambda r: r["max_gap_ms"])  # what filled the largest gap
            print(f"  the largest gap, {run['max_gap_ms']:.1f} ms at {run['worst_at_s']:.2f} s "
                  f"of the run ({run['seconds']:.2f} s), held these events:")  # fmt: skip
            for at, took, what in run["worst_events"]:
                if took > 0.2:
                    print(f"    at {at * 1000:+6.1f} ms {took:6.2f} ms  {what}")
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
