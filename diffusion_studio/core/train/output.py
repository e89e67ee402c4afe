"""What a training run leaves: the model folder (the EMA weights, the schedule and the studio
JSON with the run's record and lineage), and the checks that keep it from a person's files."""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any

import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import check_apart, check_folder_target, check_named
from diffusion_studio.core.model import STUDIO_FILE
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.core.train.checkpoints import TrainState, latest_checkpoint
from diffusion_studio.core.train.config import ACCURACY_LEVELS, TrainConfig
from diffusion_studio.core.train.data import TrainingData
from diffusion_studio.core.train.networks import make_schedule


@torch.no_grad()
def held_out_accuracy(
    classifier: torch.nn.Module, schedule: NoiseSchedule, data: TrainingData, seed: int = 0
) -> dict[int, float]:
    """The classifier's accuracy on `data` at each of ACCURACY_LEVELS' timesteps, every image
    noised once per level with a fixed seed."""
    T = schedule.num_train_timesteps
    images, labels = data.as_tensor(), torch.from_numpy(data.labels)
    device = next(classifier.parameters()).device
    scores = {}
    for level in ACCURACY_LEVELS:
        t = round(level * (T - 1))
        g = torch.Generator().manual_seed(seed + t)
        right = 0
        for start in range(0, len(images), 256):
            x_0 = images[start : start + 256]
            noise = torch.randn(x_0.shape, generator=g)
            steps = torch.full((len(x_0),), t, dtype=torch.long)
            x_t = schedule.q_sample(x_0, steps, noise).to(device)
            guess = classifier(x_t, steps.to(device)).argmax(dim=1).cpu()
            right += int((guess == labels[start : start + 256]).sum())
        scores[t] = right / len(images)
    return scores


def studio_metadata(
    config: TrainConfig, data: TrainingData, state: TrainState, command: str
) -> dict[str, Any]:
    """The studio JSON beside the model: what it knows, where from, and how it was made (and,
    for a run that started from another model's weights, that model's own training record,
    so that the whole lineage stays with the weights)."""
    training: dict[str, Any] = {
        "command": state.commands[0] if state.commands else command,
        "resumed_with": state.commands[1:],
        "steps": state.step,
        "wall_time_s": round(state.wall_time, 1),
        "hardware": "; ".join(state.hardware) or hardware_description(),
        "config": dataclasses.asdict(config),
    }
    studio: dict[str, Any] = {
        "name": config.name or Path(config.output).name,
        "class_names": list(data.class_names),
        "data": config.data_description or data.description,
        "license": config.license,
        "training": training,
    }
    earlier = _studio_of(Path(config.init_from)) if config.init_from else {}
    if isinstance(earlier.get("training"), dict):
        training["init_training"] = earlier["training"]
    same_classes = earlier.get("class_names") == studio["class_names"]
    if same_classes and isinstance(earlier.get("default_class"), str | int):
        studio["default_class"] = earlier["default_class"]  # the class the window opens on
    return studio


def _studio_of(folder: Path) -> dict[str, Any]:
    """The studio JSON of the model folder `folder` ({} when it has none readable: missing,
    not a regular file (a FIFO would block), over 16 MB, not a JSON object)."""
    file = folder / STUDIO_FILE
    try:
        if not file.is_file() or file.stat().st_size > 16 * 2**20:
            return {}
        studio = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return studio if isinstance(studio, dict) else {}


def hardware_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def write_model(
    config: TrainConfig,
    data: TrainingData,
    state: TrainState,
    command: str,
    overwrite: bool = False,
    held_out: TrainingData | None = None,
) -> Path:
    """Save the EMA weights as the model: the flat diffusers layout plus the studio JSON (for
    a classifier, with its held-out accuracy by noise level)."""
    studio = studio_metadata(config, data, state, command)
    schedule = make_schedule(config)
    if config.task == "classifier" and held_out is not None and len(held_out.images):
        accuracy = held_out_accuracy(state.ema, schedule, held_out)
        studio["accuracy_by_timestep"] = {str(t): round(a, 4) for t, a in accuracy.items()}
        studio["held_out_images"] = len(held_out.images)
    return save_model(state.ema, schedule, config.output, studio=studio, overwrite=overwrite)


def check_output(config: TrainConfig, *, resume: bool, force: bool) -> bool:
    """Refuse, before any work, an output or checkpoint folder that would put a person's files
    at risk; returns whether the finished model may replace an existing --out.

    --out may not be (or hold, or lie inside) the current folder, the data or the checkpoints.
    An existing --out is replaced only with `force`, or on --resume when a training run wrote
    it (continuing a run into its own folder), and then only if it is a model folder. A new
    run never writes into a checkpoint folder that holds another run's checkpoints (their
    rotation would delete them).
    """
    out = Path(config.output)
    if not config.checkpoint_dir:  # the default one is named after --out: it needs a name
        check_apart(out, {"training data": config.data})
        check_named(out)
    checkpoints = config.checkpoints
    check_apart(out, {"training data": config.data, "checkpoint folder": checkpoints})
    check_apart(checkpoints, {"training data": config.data}, flag="--checkpoint-dir")
    check_named(out)
    check_named(checkpoints, "--checkpoint-dir")
    exists = out.exists() or out.is_symlink()
    overwrite = force or (resume and _written_by_training(out))
    if exists:
        check_folder_target(out, overwrite=overwrite)
    if not resume and latest_checkpoint(checkpoints) is not None:
        raise InputError(
            f"{checkpoints} holds the checkpoints of another run: continue it with --resume, "
            "or give this run another --checkpoint-dir"
        )
    return exists


def _written_by_training(folder: Path) -> bool:
    """Whether `folder` is a model that this project's train command wrote."""
    return isinstance(_studio_of(folder).get("training"), dict)
