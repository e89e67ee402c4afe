"""Sampling spread over processes with `accelerate launch` (two CPU processes here): the same
images as one process, under the same names, and the commands that run in one process only
say so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.cli.generate import _shares
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.shards import Shard

pytest.importorskip("accelerate")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(arguments: list[str], cwd: Path, processes: int = 2) -> subprocess.CompletedProcess:
    """`accelerate launch --num_processes N -m diffusion_studio ...` (its launcher of several
    processes, gloo where there is no GPU), each process one CPU thread."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "diffusion_studio", *arguments]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_two_processes_make_one_process_images_bit_for_bit(tmp_path, tiny_model_dir) -> None:
    # the precision named: the launched processes are not under conftest's float32 default
    flags = ["--model", str(tiny_model_dir), "--steps", "3", "--seed", "7", "--quiet",
             "--precision", "float32"]  # fmt: skip
    one, two, spans = tmp_path / "one", tmp_path / "two", tmp_path / "spans"
    assert main(["sample", *flags, "-n", "2", "--batches", "3", "--outdir", str(one)]) == 0
    result = launch(["sample", *flags, "-n", "2", "--batches", "3", "--outdir", str(two)], tmp_path)
    assert result.returncode == 0, result.stderr
    alone, spread = images(one), images(two)
    assert sorted(alone) == sorted(f"0000{k // 2 + 1}-{7 + k}.png" for k in range(6))
    assert list(spread) == list(alone)  # the same names: one run number per batch
    assert all(np.array_equal(alone[name], spread[name]) for name in alone)
    assert all(read_png_metadata(one / n) == read_png_metadata(two / n) for n in alone)
    # one batch of 4 is split: each process a batch of 2, as -n 2 --batches 2 in one
    result = launch(["sample", *flags, "-n", "4", "--outdir", str(spans)], tmp_path)
    assert result.returncode == 0, result.stderr
    split = images(spans)
    assert sorted(split) == sorted(f"00001-{7 + k}.png" for k in range(4))
    assert all(np.array_equal(split[f"00001-{7 + k}.png"], alone[f"0000{k // 2 + 1}-{7 + k}.png"])
               for k in range(4))  # fmt: skip


def test_eval_spread_over_two_processes_scores_the_same(tmp_path) -> None:
    flags = ["eval", "-n", "12", "--steps", "2", "--sampler", "ddim", "--eta", "0", "--batch", "4"]
    alone = subprocess.run(
        [sys.executable, "-m", "diffusion_studio", *flags, "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    spread = launch([*flags, "--quiet"], tmp_path)
    assert alone.returncode == 0 and spread.returncode == 0, spread.stderr
    table = alone.stdout[alone.stdout.index("Frechet") :]
    assert "DDIM eta=0" in table and spread.stdout.count("Frechet") == 1  # the main one prints
    assert spread.stdout[spread.stdout.index("Frechet") :] == table


def test_shards_split_and_deal_every_image_once() -> None:
    for count in (1, 2, 3, 5):
        spans = [Shard(i, count).span(7) for i in range(count)]
        assert [k for span in spans for k in span] == list(range(7))
        dealt = sorted(k for i in range(count) for k, _ in Shard(i, count).deal("abcdefg"))
        assert dealt == list(range(7))
    assert list(Shard(0, 2).span(1)) == [] and list(Shard(1, 2).span(1)) == [0]


def test_a_shared_run_writes_only_into_a_folder(tmp_path) -> None:
    args = Namespace(out=str(tmp_path / "a.png"), grid=None, save_trajectory=None, outdir=None)
    with pytest.raises(InputError, match="--out is for one process"):
        _shares(args, [], Shard(1, 2), whole=False)


def test_commands_of_one_process_refuse_a_launcher(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["compare", "--eta", "0,1", "--out", str(tmp_path / "table")]) == 2
    assert "compare runs in one process, not 2" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_batches_go_on_from_seed_to_seed(capsys, tmp_path, tiny_model_dir) -> None:
    flags = ["sample", "--model", str(tiny_model_dir), "--steps", "2", "--seed", "3", "--quiet"]
    out, grid = tmp_path / "cat.png", tmp_path / "grid.png"
    assert main([*flags, "-n", "2", "--batches", "2", "--out", str(out), "--grid", str(grid)]) == 0
    names = [Path(line).name for line in capsys.readouterr().out.split()]
    assert names == ["cat-3.png", "cat-4.png", "cat-5.png", "cat-6.png", "grid.png"]
    records = [read_png_metadata(tmp_path / name)["request"] for name in names[:4]]
    assert [r["seed"] for r in records] == [3, 4, 5, 6]  # each image's request alone
    assert Image.open(grid).size[0] < 2 * Image.open(grid).size[1]  # two rows of two
    assert main([*flags, "-n", "2", "--out", str(tmp_path / "one.png")]) == 0
    first = np.asarray(Image.open(tmp_path / "one-4.png"))
    assert np.array_equal(first, np.asarray(Image.open(tmp_path / "cat-4.png")))
