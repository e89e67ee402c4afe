"""Hostile input through the window (offscreen): model folders, PNG records, dropped files,
crash-restore sessions; and child processes: kill -9 during writes, two trainings at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import torch
from cases_cli import EPS, PDF
from harness import WINDOW_REFUSED, Case, Check, run_cli
from PIL import Image
from PIL.PngImagePlugin import PngInfo

OPEN_WINDOWS: list = []  # closed at the end, so that their inference threads stop


def open_window(root: Path, model: Path, autosave: Path | None = None):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.ui.main_window import MainWindow

    QApplication.instance() or QApplication([])
    settings = QSettings(str(root.parent / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(model), settings=settings, load_default=False, autosave=autosave)
    OPEN_WINDOWS.append(window)
    return window


def window_cases(p: dict[str, Path], root: Path) -> list[Case]:
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.core.export import METADATA_KEY
    from diffusion_studio.core.request import SampleRequest

    window = open_window(root, p["model"])
    window.show()

    def refused_in_window(action: Callable[[], bool]) -> Check:
        def check() -> tuple[bool, str]:
            window.clear_error()
            model, request = window.model, window.panel.request()
            answer = action()
            QApplication.processEvents()
            kept = window.model is model and window.panel.request() == request
            shown = window.error.isVisible() and bool(window.error.text())
            said = window.error.text()[:150]
            return not answer and kept and shown, f"{'kept' if kept else 'CHANGED'}: {said}"

        return check

    cases = []
    for folder in [*sorted((root / "bad-models").iterdir()), *(root / "bad-weights").iterdir()]:
        action = refused_in_window(lambda f=folder: window.load_model_folder(f))
        cases.append(Case("window: model folder", folder.name, None, WINDOW_REFUSED, action))
    good = SampleRequest(sampler="ddpm", num_inference_steps=7, seed=99).to_dict()

    def request(**changes: object) -> str:
        return json.dumps({"request": {**good, **changes}})

    records = {
        "not JSON": "{nope",
        "a list": "[1]",
        "a number": "3",
        "no request": json.dumps({"model": "x"}),
        "request a list": json.dumps({"request": [1]}),
        "steps a word": request(num_inference_steps="many"),
        "steps true": request(num_inference_steps=True),
        "eta NaN": '{"request": {"eta": NaN}}',
        "guidance Infinity": '{"request": {"guidance_scale": Infinity}}',
        "guidance 1e308": request(guidance_scale=1e308),
        "eta 2": request(eta=2.0),
        "sampler euler": request(sampler="euler"),
        "spacing sideways": request(timestep_spacing="sideways"),
        "variance sideways": request(variance_type="sideways"),
        "precision float16": request(precision="float16"),
        "precision 32": request(precision=32),
        "precision of 10,000 characters": request(precision="f" * 10_000),
        "seed -3": request(seed=-3),
        "seed 10**30": request(seed=10**30),
        "batch 0": request(batch_size=0),
        "batch 10**9": request(batch_size=10**9),
        "jump length 0": request(jump_length=0),
        "class -1": request(class_label=-1),
        "a sampler of 10,000 characters": request(sampler="d" * 10_000),
        "nested 5,000 deep": '{"request": ' + "[" * 5000 + "]" * 5000 + "}",
        "nested objects": json.dumps({"request": good, "x": [[[[[[1]]]]]]}),
        "a model name of 10,000 characters": json.dumps({"request": good, "model": "m" * 10_000}),
        "inpaint a word": json.dumps({"request": good, "inpaint": "yes"}),
        "a bad grid row": json.dumps({"request": good, "requests": [{"eta": -1}]}),
        "200 KB of padding": json.dumps({"request": good, "pad": "x" * 200_000}),
    }
    folder = root / "records"
    folder.mkdir()
    for i, (name, text) in enumerate(records.items()):
        path = folder / f"record-{i}.png"
        info = PngInfo()
        info.add_text(METADATA_KEY, text)
        Image.new("RGB", (16, 16), "white").save(path, pnginfo=info)
        action = refused_in_window(lambda f=path: window.open_file(f))
        cases.append(Case("PNG record", name, None, WINDOW_REFUSED, action))
    dropped = {
        "an EPS named picture.png": ("drop.png", EPS),
        "a truncated PNG": ("cut.png", p["image"].read_bytes()[:60]),
        "a PDF": ("doc.pdf", PDF),
    }
    for name, (file, data) in dropped.items():
        (folder / file).write_bytes(data)
        action = refused_in_window(lambda f=folder / file: window.open_file(f))
        cases.append(Case("window: open file", name, None, WINDOW_REFUSED, action))
    return cases + crash_restore_cases(p, root)


def crash_restore_cases(p: dict[str, Path], root: Path) -> list[Case]:
    """Autosave folders a crash (or someone) left, each beside one good session: the good one
    must be offered, and the studio must start."""
    from diffusion_studio.core.request import SampleRequest

    state = json.dumps({"saved_at": 1.0, "request": SampleRequest(seed=4242).to_dict()})
    hostile = {
        "state not JSON": {"state.json": "{nope"},
        "state nested 10,000 deep": {"state.json": "[" * 10_000},
        "state a list": {"state.json": "[1, 2]"},
        "saved_at a word": {"state.json": '{"saved_at": "yesterday"}', "mask.png": "white"},
        "saved_at NaN": {"state.json": '{"saved_at": NaN}', "mask.png": "white"},
        "channels 7": {"state.json": '{"channels": 7}', "source.png": "white"},
        "a request with eta 5": {"state.json": '{"request": {"eta": 5}}', "mask.png": "white"},
        "a caption of a megabyte": {"state.json": json.dumps({"caption": "x" * 2**20})},
        "the model path a file": {
            "state.json": '{"model_path": "/etc/passwd"}',
            "mask.png": "white",
        },
        "the source an EPS": {"source.png": EPS, "state.json": "{}"},
        "the mask a truncated PNG": {"mask.png": p["image"].read_bytes()[:70]},
        "the mask a bomb": {"mask.png": "bomb"},
        "state.json a FIFO": {"state.json": "fifo", "mask.png": "white"},
        "the source a FIFO": {"source.png": "fifo", "state.json": "{}"},
        "the mask a FIFO": {"mask.png": "fifo"},
        "a request of 2**40 steps": {
            "state.json": json.dumps(
                {"request": {**SampleRequest().to_dict(), "num_inference_steps": 2**40}}
            ),
            "mask.png": "white",
        },
    }

    def check_with(files: dict[str, object], base: Path) -> Check:
        def check() -> tuple[bool, str]:
            sessions = base / "autosave"
            good = sessions / "session-1-1"
            good.mkdir(parents=True)
            Image.open(p["image"]).convert("RGB").resize((16, 16)).save(good / "source.png")
            (good / "state.json").write_text(state)
            bad = sessions / "session-2-2"
            bad.mkdir()
            for file, content in files.items():
                if content == "white":
                    Image.new("L", (16, 16), 255).save(bad / file)
                elif content == "bomb":
                    Image.new("1", (30_000, 30_000)).save(bad / file)
                elif content == "fifo":  # reading it would block the start forever
                    os.mkfifo(bad / file)
                else:
                    data = content.encode() if isinstance(content, str) else content
                    (bad / file).write_bytes(data)  # type: ignore[arg-type]
            window = open_window(root, p["model"], sessions)
            offered = []
            window.autosave.ask = lambda snapshot: offered.append(snapshot.folder.name) or False
            window.autosave.offer_restore()
            window.autosave.offer_restore()  # a declined session goes; the next is offered
            window.close()
            shutil.rmtree(base)
            return "session-1-1" in offered, f"offered {offered}"

        return check

    return [
        Case(
            "crash restore",
            name,
            None,
            "the good session is offered",
            check_with(files, root / f"restore-{i}"),
        )
        for i, (name, files) in enumerate(hostile.items())
    ]


def process_cases(p: dict[str, Path], root: Path) -> list[Case]:
    python = [sys.executable, "-m", "diffusion_studio"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = ["--preset", "tiny", "--resolution", "16", "--batch-size", "2", "--quiet"]
    data = str(p["data"])

    def start(*argv: str) -> subprocess.Popen:
        return subprocess.Popen([*python, *argv], env=env, stderr=subprocess.DEVNULL)

    def wait_for(path: Path, child: subprocess.Popen, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not path.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{path.name} never appeared")
            time.sleep(0.05)

    def kill(child: subprocess.Popen) -> None:
        child.send_signal(signal.SIGKILL)
        child.wait()

    def kill_during_training(delay: float) -> Check:
        def check() -> tuple[bool, str]:
            from diffusion_studio.core.train.checkpoints import latest_checkpoint

            out = root / f"killed-{delay}"
            checkpoints = Path(f"{out}-checkpoints")
            child = start(
                "train",
                data,
                "--out",
                str(out),
                "--steps",
                "100000",
                "--checkpoint-every",
                "1",
                *train,
            )
            try:
                wait_for(checkpoints / "checkpoint-0000002.pt", child)
                time.sleep(delay)
            finally:
                kill(child)
            found = sorted(checkpoints.glob("checkpoint-*.pt"))
            whole = all(isinstance(torch.load(f, weights_only=True), dict) for f in found)
            step = int(latest_checkpoint(checkpoints).stem.split("-")[1])
            code, _, _ = run_cli(
                ["train", data, "--out", str(out), "--steps", str(step + 1), "--resume", *train]
            )
            for folder in (out, checkpoints):
                shutil.rmtree(folder, ignore_errors=True)
            for leftover in root.glob(f".{out.name}*"):  # the lock and the staging folder
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            said = f"{len(found)} whole checkpoints up to step {step}; resumed: exit {code}"
            return whole and code == 0, said

        return check

    def kill_during_sample() -> tuple[bool, str]:
        out = root / "big.png"
        child = start(
            "sample",
            "--model",
            str(p["uncond"]),
            "-n",
            "64",
            "--steps",
            "3",
            "--grid",
            str(out),
            "--quiet",
        )
        deadline = time.monotonic() + 120
        while not any(root.glob(".big.png.*.tmp")) and child.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.001)
        kill(child)
        whole = not out.exists() or Image.open(out).load() is not None
        for leftover in [*root.glob(".big.png.*.tmp"), out]:
            leftover.unlink(missing_ok=True)
        return whole, "no half-written PNG (a temporary file is renamed in only when whole)"

    def two_trainings() -> tuple[bool, str]:
        out = root / "twice"
        first = start("train", data, "--out", str(out), "--steps", "100000", *train)
        try:
            wait_for(root / ".twice.lock", first)
            started = time.monotonic()
            code, _, err = run_cli(
                [
                    "train",
                    data,
                    "--out",
                    str(out),
                    "--steps",
                    "2",
                    "--checkpoint-dir",
                    str(root / "other"),
                    *train,
                ]
            )
            seconds = time.monotonic() - started
        finally:
            kill(first)
        shutil.rmtree(f"{out}-checkpoints", ignore_errors=True)
        (root / ".twice.lock").unlink(missing_ok=True)
        ok = code == 2 and "another training is writing" in err and seconds < 5
        return ok, f"the second: exit {code} in {seconds:.1f} s: {err.strip()[:80]}"

    def window_killed_while_saving() -> tuple[bool, str]:
        from diffusion_studio.ui.autosave import read_snapshot

        sessions, ini = root / "killed-window", root.parent / "killed.ini"
        code = textwrap.dedent(f"""
            from pathlib import Path
            from PySide6.QtCore import QSettings
            from PySide6.QtWidgets import QApplication
            from diffusion_studio.core.model_files import load_model
            from diffusion_studio.ui.main_window import MainWindow
            app = QApplication([])
            settings = QSettings({str(ini)!r}, QSettings.Format.IniFormat)
            w = MainWindow(load_model({str(p["model"])!r}), settings=settings,
                           load_default=False, autosave=Path({str(sessions)!r}))
            w.load_source({str(p["image"])!r})
            print("saving", flush=True)
            while True:
                for change in (w.canvas.fill, w.canvas.clear_mask):
                    change()
                    w.autosave.save_now()
        """)
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        child.stdout.readline()
        time.sleep(1.5)
        kill(child)
        folders = list(sessions.glob("session-*"))
        snapshot = read_snapshot(folders[0]) if folders else None
        shutil.rmtree(sessions, ignore_errors=True)
        ok = snapshot is not None and snapshot.source is not None
        return ok, "the killed session's image is there to restore" if ok else "nothing readable"

    resumes = "whole checkpoints; it resumes"
    return [
        Case(
            "kill -9", "training, just after a checkpoint", None, resumes, kill_during_training(0.0)
        ),
        Case("kill -9", "training, 0.3 s later", None, resumes, kill_during_training(0.3)),
        Case("kill -9", "training, 1.1 s later", None, resumes, kill_during_training(1.1)),
        Case(
            "kill -9", "sample, while the grid is written", None, "no half file", kill_during_sample
        ),
        Case(
            "kill -9",
            "the window, while it autosaves",
            None,
            "the work is restorable",
            window_killed_while_saving,
        ),
        Case(
            "two at once",
            "two trainings on one --out",
            None,
            "the second refused at once",
            two_trainings,
        ),
    ]
