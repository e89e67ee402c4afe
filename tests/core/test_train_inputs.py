"""Training never deletes what a person made, and refuses bad data, settings and checkpoints
before the first step, with one message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.train.loop import TrainConfig, run_training


def train(capsys, *argv: str) -> tuple[int, str]:
    """`diffusion-studio train ...` as a person types it: (exit code, stderr)."""
    try:
        code = main(["train", *argv, "--preset", "tiny", "--resolution", "16", "--quiet"])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A person's folder: their data (images), and a thesis beside it."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    (tmp_path / "thesis.txt").write_text("three years of work")
    return tmp_path


def everything(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_an_out_holding_a_persons_file_is_never_deleted(capsys, workspace) -> None:
    mine = workspace / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    before = everything(workspace)
    for extra in ([], ["--force"]):
        code, err = train(capsys, "data", "--out", "mine", "--steps", "2", *extra)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "already exists" in train(capsys, "data", "--out", "mine", "--steps", "2")[1]
    assert "not a model folder (it holds thesis.txt)" in err
    assert everything(workspace) == before  # nothing deleted, nothing written


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("data", [], "is the training data"),
        ("data", ["--force"], "is the training data"),
        (".", ["--checkpoint-dir", "ck", "--force"], "is the current folder"),
        ("data/..", ["--force"], "is the current folder"),
        ("data/model", [], "lies inside the training data"),
        ("m", ["--checkpoint-dir", "data"], "is the training data"),
        ("m", ["--checkpoint-dir", "."], "lies inside the checkpoint folder (.)"),
    ],
)
def test_an_out_that_is_the_data_or_the_current_folder_is_refused_first(
    capsys, workspace, out, extra, message
) -> None:
    before = everything(workspace)
    started = time.monotonic()
    code, err = train(capsys, "data", "--out", out, "--steps", "2", *extra)
    assert code == 2 and message in err and err.count("\n") == 1
    assert time.monotonic() - started < 5  # refused before any work
    assert everything(workspace) == before


def test_force_replaces_a_model_folder_and_resume_continues_into_its_own(capsys, workspace) -> None:
    assert train(capsys, "data", "--out", "m", "--steps", "2")[0] == 0
    assert "already exists" in train(capsys, "data", "--out", "m", "--steps", "2")[1]
    # a new run into the same checkpoints would rotate the old ones away
    code, err = train(capsys, "data", "--out", "m", "--steps", "2", "--force")
    assert code == 2 and "holds the checkpoints of another run" in err
    code, err = train(
        capsys, "data", "--out", "m", "--steps", "2", "--force", "--checkpoint-dir", "ck2"
    )
    assert code == 0, err
    # continuing the first run into its own folder needs no --force
    assert train(capsys, "data", "--out", "m", "--steps", "4", "--resume")[0] == 0
    assert (workspace / "thesis.txt").read_text() == "three years of work"


def test_a_second_training_on_one_out_is_refused_at_once(capsys, workspace) -> None:
    command = [sys.executable, "-m", "diffusion_studio", "train", "data", "--out", "m"]
    first = subprocess.Popen(
        [*command, "--preset", "tiny", "--resolution", "16", "--steps", "100000", "--quiet"],
        cwd=workspace,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (workspace / ".m.lock").exists():
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        code, err = train(capsys, "data", "--out", "m", "--steps", "2", "--checkpoint-dir", "x")
        assert code == 2 and "another training is writing m now" in err
        assert time.monotonic() - started < 5
    finally:
        first.kill()
        first.wait()


def settings(workspace: Path, **changes) -> TrainConfig:
    values = {
        "data": str(workspace / "data"),
        "output": str(workspace / "m"),
        "preset": "tiny",
        "resolution": 16,
        "steps": 2,
        "batch_size": 2,
        **changes,
    }
    return TrainConfig(**values)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_rate": float("nan")}, "learning rate must be a finite number"),
        ({"ema_decay": float("inf")}, "ema decay must be a finite number"),
        ({"resolution": 100_000}, "over the limit of 1024"),
        ({"resolution": 17}, "a multiple of 2"),
        ({"preset": "small", "resolution": 20}, "a multiple of 8"),
        ({"warmup_steps": -1}, "warm-up"),
        ({"batch_size": 10**9}, "--batch-size at most"),
    ],
)
def test_bad_settings_are_refused(workspace, changes, message) -> None:
    with pytest.raises(InputError, match=message):
        run_training(settings(workspace, **changes), progress=False)


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_bad_data_is_one_message(workspace) -> None:
    images = np.zeros((4, 16, 16, 3), np.uint8)
    cases = {
        "empty folder": (workspace / "empty", "holds no images"),
        "no images": (write_npz(workspace / "a.npz", labels=np.arange(4)), "no 'images' array"),
        "labels out of range": (
            write_npz(workspace / "b.npz", images=images, labels=np.array([0, 1, 2, 10**6])),
            "the limit is 100,000 classes",
        ),
        "labels beyond categories": (
            write_npz(
                workspace / "c.npz", images=images, labels=np.arange(4), categories=np.array(["x"])
            ),
            "only 1 categories",
        ),
        "negative labels": (
            write_npz(workspace / "d.npz", images=images, labels=np.array([0, -1, 0, 0])),
            "0 or more",
        ),
        "no images in it": (
            write_npz(workspace / "e.npz", images=np.zeros((0, 16, 16, 3), np.uint8)),
            "holds no images",
        ),
    }
    (workspace / "empty").mkdir()
    truncated = workspace / "t.npz"
    truncated.write_bytes((workspace / "b.npz").read_bytes()[:300])
    cases["truncated"] = (truncated, "not a readable .npz")
    damaged = bytearray((workspace / "b.npz").read_bytes())
    damaged[200:260] = b"\xff" * 60
    (workspace / "x.npz").write_bytes(bytes(damaged))
    cases["damaged"] = (workspace / "x.npz", "not a readable .npz")
    for name, (data, message) in cases.items():
        with pytest.raises(InputError, match=message):
            run_training(settings(workspace, data=str(data)), progress=False)
        assert not (workspace / "m").exists(), name


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_bad_checkpoint_is_refused_as_one_line(capsys, workspace) -> None:
    assert train(capsys, "data", "--out", "m", "--steps", "2", "--checkpoint-every", "1")[0] == 0
    checkpoints = workspace / "m-checkpoints"
    latest = sorted(checkpoints.glob("checkpoint-*.pt"))[-1]
    good = torch.load(latest, weights_only=True)
    marker = workspace / "code-ran"
    payloads = {
        "garbage": b"not a checkpoint at all" * 10,
        "missing keys": {k: v for k, v in good.items() if k != "ema"},
        "not a dict": [1, 2, 3],
        "carries code": {**good, "step": _RunsCode(str(marker))},
        "wrong weights": {**good, "model": {"conv_in.weight": torch.zeros(1)}},
    }
    for name, payload in payloads.items():
        target = checkpoints / "checkpoint-9999999.pt"
        if isinstance(payload, bytes):
            target.write_bytes(payload)
        else:
            torch.save(payload, target)
        code, err = train(capsys, "data", "--out", "m", "--steps", "9", "--resume")
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert "checkpoint" in err, (name, err)
    assert not marker.exists()  # the pickle's code never ran
