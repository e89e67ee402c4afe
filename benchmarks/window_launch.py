"""How soon the window is up: from starting `diffusion-studio` (the command line's path to the
window, in a fresh process) to the window shown on screen, and to the embedded model ready
(Run enabled), beside a bare Qt window in a fresh process; the median of several launches,
the two alternating.

    xvfb-run -a python benchmarks/window_launch.py --runs 5
    QT_QPA_PLATFORM=offscreen python benchmarks/window_launch.py

Each launch is a new Python process; a driver installs an event filter on the application
before the studio's own code creates its window, notes the first time a top-level window is
exposed, then polls for the model, and quits. Settings and outputs go to a throwaway folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WATCH = r"""
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QWindow
from PySide6.QtWidgets import QApplication
t0 = float(sys.argv[1])
seen = {}
class Watch(QObject):
    def eventFilter(self, obj, event):
        exposed = event.type() == QEvent.Type.Expose and isinstance(obj, QWindow)
        if exposed and obj.isExposed() and "shown" not in seen:
            seen["shown"] = time.time() - t0
        return False
"""

STUDIO = (
    WATCH
    + r"""
app = QApplication(["diffusion-studio"])
watch = Watch()
app.installEventFilter(watch)
def poll():
    for widget in app.topLevelWidgets():
        if getattr(widget, "model", None) is not None and "ready" not in seen:
            seen["ready"] = time.time() - t0
            print(json.dumps(seen), flush=True)
            widget.ask_discard = lambda count: True
            widget.close()
            app.quit()
timer = QTimer(); timer.timeout.connect(poll); timer.start(5)
from diffusion_studio.cli import main
sys.exit(main([]))
"""
)

BARE = (
    WATCH
    + r"""
from PySide6.QtWidgets import QMainWindow
app = QApplication(["bare"])
watch = Watch()
app.installEventFilter(watch)
window = QMainWindow(); window.resize(1280, 820); window.show()
def poll():
    if "shown" in seen:
        print(json.dumps(seen), flush=True)
        app.quit()
timer = QTimer(); timer.timeout.connect(poll); timer.start(5)
app.exec()
"""
)


def launch(code: str, env: dict[str, str]) -> dict[str, float]:
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code, repr(started)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": f"{home}/config",
           "XDG_DATA_HOME": f"{home}/data", "XDG_PICTURES_DIR": f"{home}/pictures"}  # fmt: skip
    launch(BARE, env), launch(STUDIO, env)  # warm the file cache
    studio, bare = [], []
    for _ in range(args.runs):
        bare.append(launch(BARE, env)["shown"])
        studio.append(launch(STUDIO, env))
    shown = statistics.median(s["shown"] for s in studio)
    ready = statistics.median(s["ready"] for s in studio)
    window = statistics.median(bare)
    print(f"{args.runs} launches each, medians:")
    print(f"  bare Qt window shown       {window:6.2f} s")
    print(f"  the studio shown           {shown:6.2f} s   {shown / window:5.1f}x the bare window")
    print(f"  the studio's model ready   {ready:6.2f} s   {ready / window:5.1f}x")


if __name__ == "__main__":
    main()
