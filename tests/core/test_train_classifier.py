"""train-classifier: a noise-aware classifier trained with train's machinery (data, checkpoints,
exact resume), its held-out accuracy by noise level in its card, and its folder opening as a
classifier that fits the model whose noise it learned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.model_files import load_classifier, load_model
from diffusion_studio.core.train.checkpoints import latest_checkpoint
from diffusion_studio.core.train.loop import TrainConfig, run_training


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    """32 images of three classes at 16x16: the class is the colour, a classifier learns it."""
    path = tmp_path_factory.mktemp("npz") / "colours.npz"
    rng = np.random.default_rng(2)
    labels = np.arange(32) % 3
    images = rng.integers(0, 40, (32, 16, 16, 3)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, :, :, label] += 200
    np.savez(path, images=images, labels=labels, categories=np.array(["r", "g", "b"]))
    return path


def config(tmp_path: Path, data: Path, noise_of: Path, name: str = "classifier", **changes):
    settings = dict(task="classifier", preset="tiny", resolution=16, steps=8, batch_size=8,
                    warmup_steps=2, checkpoint_every=4, sample_every=4, holdout=0.25,
                    ema_decay=0.9, noise_of=str(noise_of))  # fmt: skip
    return TrainConfig(data=str(data), output=str(tmp_path / name), **{**settings, **changes})


def test_a_trained_classifier_opens_fits_its_model_and_tells_its_accuracy(
    tmp_path, shapes, tiny_model_dir, capsys
) -> None:
    path = run_training(config(tmp_path, shapes, tiny_model_dir), progress=False, command="c")
    classifier = load_classifier(path, device="cpu")
    model = load_model(tiny_model_dir, device="cpu")
    assert classifier.class_names == ("r", "g", "b")
    assert classifier.mismatch(model) is not None  # the tiny model's classes are others
    assert np.allclose(classifier.schedule.alphas_cumprod, model.schedule.alphas_cumprod)
    studio = json.loads((path / "diffusion_studio.json").read_text())
    assert list(studio["accuracy_by_timestep"]) == ["0", "25", "50", "74", "99"]
    assert all(0 <= a <= 1 for a in studio["accuracy_by_timestep"].values())
    assert studio["held_out_images"] == 8 and studio["training"]["steps"] == 8
    assert "held-out accuracy t=0:" in capsys.readouterr().out  # every sample_every steps


def test_a_killed_and_resumed_classifier_run_ends_at_the_same_weights(
    tmp_path, shapes, tiny_model_dir
) -> None:
    straight = run_training(config(tmp_path, shapes, tiny_model_dir, "a"), progress=False)
    interrupted = config(tmp_path, shapes, tiny_model_dir, "b")
    run_training(interrupted, progress=False, stop_after=6)
    assert latest_checkpoint(interrupted.checkpoints).name == "checkpoint-0000004.pt"
    resumed = run_training(interrupted, progress=False, resume=True)
    a = load_file(straight / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_what_a_classifier_cannot_learn_from_is_refused(
    tmp_path, shapes, tiny_model_dir, tiny_uncond_dir
) -> None:
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, images=np.zeros((8, 16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="no labels"):
        run_training(config(tmp_path, unlabelled, tiny_model_dir), progress=False)
    with pytest.raises(InputError, match="train the classifier at its size"):
        run_training(config(tmp_path, shapes, tiny_model_dir, resolution=32), progress=False)
    with pytest.raises(InputError, match="held-out share"):
        run_training(config(tmp_path, shapes, tiny_model_dir, holdout=0.9), progress=False)
    with pytest.raises(InputError, match="unknown preset 'base'; use tiny, small"):
        run_training(config(tmp_path, shapes, tiny_model_dir, preset="base"), progress=False)
    assert not (tmp_path / "classifier").exists()


def test_the_command_line_trains_a_classifier(tmp_path, shapes, tiny_model_dir, capsys) -> None:
    from diffusion_studio.cli import main

    out = tmp_path / "cli-classifier"
    argv = ["train-classifier", str(shapes), "--out", str(out), "--preset", "tiny",
            "--resolution", "16", "--steps", "3", "--batch-size", "4", "--noise-of",
            str(tiny_model_dir), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    studio = json.loads((out / "diffusion_studio.json").read_text())
    assert studio["training"]["command"].startswith("diffusion-studio train-classifier")
    assert studio["training"]["config"]["task"] == "classifier"
    assert main([*argv[:-1], "--holdout", "0.9"]) == 2
    assert "held-out share" in capsys.readouterr().err
