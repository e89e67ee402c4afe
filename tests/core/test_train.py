"""Training (Algorithm 1): a model that loads and samples, exact resume, Ctrl-C, Accelerate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run
from diffusion_studio.core.train import loop, output
from diffusion_studio.core.train.checkpoints import latest_checkpoint
from diffusion_studio.core.train.loop import (
    TrainConfig,
    batch_indices,
    learning_rate_factor,
    run_training,
)
from diffusion_studio.core.train.output import hardware_description


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """20 PNGs of coloured discs and squares in nested folders, of assorted sizes."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(20):
        size = int(rng.integers(12, 40))
        yy, xx = np.mgrid[:size, :size]
        shape = (
            (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
            if i % 2
            else ((abs(yy - size / 2) < size / 4) & (abs(xx - size / 2) < size / 4))
        )
        image = np.full((size, size, 3), 255, np.uint8)
        image[shape] = rng.integers(0, 256, 3)
        sub = folder / ("discs" if i % 2 else "squares")
        sub.mkdir(exist_ok=True)
        Image.fromarray(image).save(sub / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def labelled_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("npz") / "shapes.npz"
    rng = np.random.default_rng(1)
    np.savez(
        path,
        images=rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8),
        labels=np.arange(24) % 3,
        categories=np.array(["a", "b", "c"]),
    )
    return path


def config(tmp_path: Path, data: Path, name: str = "model", **changes) -> TrainConfig:
    settings = {
        "preset": "tiny",
        "resolution": 16,
        "steps": 10,
        "batch_size": 4,
        "warmup_steps": 3,
        "checkpoint_every": 4,
        "sample_every": 1000,
        **changes,
    }
    return TrainConfig(data=str(data), output=str(tmp_path / name), **settings)


def test_training_on_a_folder_writes_a_model_that_loads_and_samples(tmp_path, image_folder):
    path = run_training(
        config(tmp_path, image_folder), command="diffusion-studio train ...", progress=False
    )
    model = load_model(path)
    assert model.info.resolution == (16, 16) and model.info.class_names == ()
    job = Job.prepare(SampleRequest(num_inference_steps=3, batch_size=2), model.info)
    steps = list(run(model, job))
    assert steps[-1].x_t.shape == (2, 3, 16, 16) and torch.isfinite(steps[-1].x_t).all()
    studio = json.loads((path / "diffusion_studio.json").read_text())
    assert studio["training"]["steps"] == 10
    assert studio["training"]["command"] == "diffusion-studio train ..."
    assert "20 images" in studio["data"]
    assert not any(p.suffix == ".pt" for p in path.iterdir())  # checkpoints live elsewhere
    assert latest_checkpoint(tmp_path / "model-checkpoints").name == "checkpoint-0000010.pt"


def test_a_killed_and_resumed_run_ends_at_the_same_weights(tmp_path, labelled_npz):
    straight = run_training(config(tmp_path, labelled_npz, "straight"), progress=False)
    interrupted = config(tmp_path, labelled_npz, "resumed")
    # "killed" after step 6: the last checkpoint is step 4, so steps 5 and 6 are done again
    run_training(interrupted, progress=False, stop_after=6, command="train")
    assert latest_checkpoint(interrupted.checkpoints).name == "checkpoint-0000004.pt"
    assert not Path(interrupted.output).exists()
    resumed = run_training(interrupted, progress=False, resume=True, command="train --resume")
    a = load_file(straight / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_model(resumed).info.class_names == ("a", "b", "c")
    training = json.loads((resumed / "diffusion_studio.json").read_text())["training"]
    assert (training["command"], training["resumed_with"]) == ("train", ["train --resume"])
    assert training["hardware"] == hardware_description()  # once: both parts ran here


def test_the_hardware_is_that_of_the_runs_not_of_an_export(tmp_path, labelled_npz, monkeypatch):
    settings = config(tmp_path, labelled_npz, "run", steps=4)
    run_training(settings, progress=False, command="train")
    monkeypatch.setattr(output, "hardware_description", lambda: "another machine")
    # resuming at the last step trains nothing and writes the model from the checkpoint
    exported = run_training(settings, progress=False, resume=True, command="export")
    training = json.loads((exported / "diffusion_studio.json").read_text())["training"]
    assert "another machine" not in training["hardware"]
    assert training["steps"] == 4


def test_training_moves_the_weights_and_the_ema_lags(tmp_path, labelled_npz):
    cfg = config(tmp_path, labelled_npz, steps=6, ema_decay=0.5)
    run_training(cfg, progress=False)
    payload = torch.load(latest_checkpoint(cfg.checkpoints), weights_only=True)
    key = "conv_in.weight"
    assert not torch.equal(payload["model"][key], payload["ema"][key])
    assert payload["step"] == 6 and payload["version"] == 1


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_a_kill_writes_a_checkpoint_first(tmp_path, labelled_npz, monkeypatch, how):
    real_step = loop.training_step

    def interrupt_at_three(state, *args, **kwargs):
        if state.step == 3 and how == "ctrl-c":
            raise KeyboardInterrupt
        if state.step == 3:  # the handler must turn this into KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        return real_step(state, *args, **kwargs)

    monkeypatch.setattr(loop, "training_step", interrupt_at_three)
    cfg = config(tmp_path, labelled_npz, checkpoint_every=100)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, progress=False)
    assert latest_checkpoint(cfg.checkpoints).name == "checkpoint-0000003.pt"


def test_resuming_with_other_settings_is_refused(tmp_path, labelled_npz):
    run_training(config(tmp_path, labelled_npz, steps=4), progress=False)
    with pytest.raises(InputError, match="ema_decay"):
        run_training(
            config(tmp_path, labelled_npz, steps=8, ema_decay=0.9), progress=False, resume=True
        )
    # more steps is allowed: that is what resuming is for
    path = run_training(config(tmp_path, labelled_npz, steps=6), progress=False, resume=True)
    assert json.loads((path / "diffusion_studio.json").read_text())["training"]["steps"] == 6


def test_batches_walk_through_every_image_once_per_epoch():
    seen = np.concatenate([batch_indices(step, 5, 20, seed=3) for step in range(4)])
    assert sorted(seen.tolist()) == list(range(20))
    assert np.array_equal(batch_indices(2, 5, 20, 3), batch_indices(2, 5, 20, 3))
    assert not np.array_equal(batch_indices(4, 5, 20, 3), batch_indices(0, 5, 20, 3))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preset": "huge"}, "unknown preset"),
        ({"p_uncond": 1.0}, "label drop"),
        ({"steps": 0}, "steps must be at least 1"),
    ],
)
def test_bad_training_settings_say_so(tmp_path, image_folder, change, message):
    with pytest.raises(InputError, match=message):
        run_training(config(tmp_path, image_folder, **change), progress=False)


def test_accelerate_launch_with_one_cpu_process(tmp_path, image_folder):
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
    accelerate = Path(sys.executable).with_name("accelerate")
    result = subprocess.run(
        [
            str(accelerate),
            "launch",
            "--cpu",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "diffusion_studio",
            "train",
            str(image_folder),
            "--out",
            str(tmp_path / "m"),
            "--preset",
            "tiny",
            "--resolution",
            "16",
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_model(tmp_path / "m").info.resolution == (16, 16)


def test_init_starts_from_a_models_weights_even_for_another_prediction(tmp_path, labelled_npz):
    first = run_training(config(tmp_path, labelled_npz, "eps", steps=4), progress=False)
    studio_file = first / "diffusion_studio.json"
    studio_file.write_text(
        json.dumps({**json.loads(studio_file.read_text()), "default_class": "b"})
    )
    tuned = config(
        tmp_path,
        labelled_npz,
        "v",
        steps=1,
        prediction_type="v_prediction",
        init_from=str(first),
        learning_rate=1e-12,  # one step that cannot move the weights visibly
        warmup_steps=1,
    )
    out = run_training(tuned, progress=False)
    a = load_file(first / "diffusion_pytorch_model.safetensors")
    b = load_file(out / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert load_model(out).schedule.prediction_type == "v_prediction"
    training = json.loads((out / "diffusion_studio.json").read_text())["training"]
    assert training["steps"] == 1 and training["init_training"]["steps"] == 4  # the lineage
    assert training["init_training"]["config"]["prediction_type"] == "epsilon"
    assert load_model(out).info.default_class == 1  # the class it opened on, kept
    fresh = run_training(config(tmp_path, labelled_npz, "fresh", steps=1), progress=False)
    c = load_file(fresh / "diffusion_pytorch_model.safetensors")
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)  # not the seed's weights


def test_init_from_a_network_of_another_shape_says_so(tmp_path, image_folder, labelled_npz):
    unconditional = run_training(config(tmp_path, image_folder, "plain", steps=1), progress=False)
    with pytest.raises(InputError, match=r"--init .* not the tiny preset's shape"):
        run_training(
            config(tmp_path, labelled_npz, "c", steps=1, init_from=str(unconditional)),
            progress=False,
        )


def test_resuming_with_a_lower_learning_rate_decays_it_from_there(tmp_path, labelled_npz):
    first = config(tmp_path, labelled_npz, steps=4, warmup_steps=1)
    run_training(first, progress=False)
    lower = config(tmp_path, labelled_npz, steps=6, warmup_steps=1, learning_rate=1e-5)
    run_training(lower, progress=False, resume=True, command="train --resume --lr 1e-5")
    payload = torch.load(latest_checkpoint(lower.checkpoints), weights_only=True)
    assert payload["config"]["learning_rate"] == 1e-5 and payload["step"] == 6
    assert payload["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    higher = config(tmp_path, labelled_npz, steps=8, warmup_steps=1, learning_rate=1e-4)
    with pytest.raises(InputError, match=r"may only lower it from 1e-05"):
        run_training(higher, progress=False, resume=True)


def test_a_checkpoint_from_before_a_setting_existed_resumes(tmp_path, labelled_npz):
    first = config(tmp_path, labelled_npz, steps=4, warmup_steps=1)
    run_training(first, progress=False)
    path = latest_checkpoint(first.checkpoints)
    payload = torch.load(path, weights_only=True)
    for newer in ("task", "noise_of", "holdout", "lr_schedule"):  # settings added later
        del payload["config"][newer]
    torch.save(payload, path)
    longer = config(tmp_path, labelled_npz, steps=5, warmup_steps=1)
    run_training(longer, progress=False, resume=True)
    assert torch.load(latest_checkpoint(longer.checkpoints), weights_only=True)["step"] == 5


def test_the_learning_rate_warms_up_then_stays_or_decays_to_zero(tmp_path, labelled_npz):
    def factors(schedule: str) -> list[float]:
        c = config(tmp_path, labelled_npz, steps=12, warmup_steps=2, lr_schedule=schedule)
        return [learning_rate_factor(c, step) for step in (0, 1, 2, 4, 7, 12)]

    assert factors("constant") == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert factors("linear") == pytest.approx([0.5, 1.0, 1.0, 0.8, 0.5, 0.0])
    assert factors("cosine") == pytest.approx([0.5, 1.0, 1.0, 0.9045, 0.5, 0.0], abs=1e-4)
    decayed = config(tmp_path, labelled_npz, steps=6, warmup_steps=1, lr_schedule="cosine")
    run_training(decayed, progress=False)
    payload = torch.load(latest_checkpoint(decayed.checkpoints), weights_only=True)
    assert payload["step"] == 6 and payload["optimizer"]["param_groups"][0]["lr"] == 0.0
    with pytest.raises(InputError, match="learning-rate schedule must be one of constant"):
        config(tmp_path, labelled_npz, lr_schedule="step").validate()


def test_training_for_a_time_budget_takes_the_steps_the_probe_says_fit(tmp_path, image_folder):
    script = Path(__file__).parents[2] / "scripts" / "train_for_time.py"
    train = ["--preset", "tiny", "--resolution", "16", "--batch-size", "4", "--quiet"]
    command = [sys.executable, str(script), str(image_folder), "--out", str(tmp_path / "m")]
    command += ["--seconds", "2", "--probe-steps", "4", "--", *train]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads((tmp_path / "m-probe" / "diffusion_studio.json").read_text())["training"]
    done = json.loads((tmp_path / "m" / "diffusion_studio.json").read_text())["training"]
    assert probe["steps"] == 4
    assert done["steps"] == max(1, int(2 / (max(probe["wall_time_s"], 0.1) / 4)))
    assert done["command"].endswith("--lr-schedule cosine")
    refused = subprocess.run([*command, "--steps", "9"], capture_output=True, text=True)
    assert refused.returncode == 2 and "this script's to set" in refused.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)  # folders exist
    assert again.returncode != 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
