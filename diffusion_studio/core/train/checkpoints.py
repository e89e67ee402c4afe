"""Training checkpoints: one dict with a version (weights, EMA, optimizer and LR state, step,
config, RNG state, the commands and hardware of the run), written atomically, read back with
torch.load(weights_only=True) and checked, so that a resumed run continues exactly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import UNet2DModel

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import atomic_write
from diffusion_studio.core.train.config import TrainConfig

CHECKPOINT_VERSION = 1


@dataclass
class TrainState:
    """What a checkpoint holds beside the config."""

    step: int
    unet: UNet2DModel
    ema: UNet2DModel
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    wall_time: float = 0.0
    commands: list[str] = field(default_factory=list)  # the first started the run; resumes
    hardware: list[str] = field(default_factory=list)  # each machine that trained some steps


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"checkpoint-{step:07d}.pt"


def latest_checkpoint(folder: Path) -> Path | None:
    found = (
        sorted(p for p in folder.glob("checkpoint-*.pt") if p.is_file()) if folder.is_dir() else []
    )
    return found[-1] if found else None


def save_checkpoint(
    state: TrainState, config: TrainConfig, unet: UNet2DModel, keep: int = 3
) -> Path:
    """One dict with a version: weights, EMA, optimizer and LR state, step, config, RNG state."""
    folder = config.checkpoints
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, state.step)
    payload = {
        "version": CHECKPOINT_VERSION,
        "step": state.step,
        "wall_time": state.wall_time,
        "config": dataclasses.asdict(config),
        "model": unet.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "lr_scheduler": state.lr_scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "commands": state.commands,
        "hardware": state.hardware,
    }
    # the run's own file (a checkpoint of this step, from an earlier try of it)
    atomic_write(path, lambda f: torch.save(payload, f), overwrite=True)
    for old in sorted(folder.glob("checkpoint-*.pt"))[:-keep]:
        old.unlink()
    return path


# Settings a resumed run may change; anything else must match the checkpoint.
_RESUMABLE = {
    "steps",
    "checkpoint_every",
    "sample_every",
    "checkpoint_dir",
    "output",
    "name",
    "license",
    "data_description",
    "learning_rate",  # a step decay: resume with a lower rate (the commands record it)
}


_CHECKPOINT_KEYS = ("version", "step", "config", "model", "ema", "optimizer", "lr_scheduler")


def load_checkpoint(path: Path, state: TrainState, config: TrainConfig, unet: UNet2DModel) -> None:
    """Restore a run from `path`: a damaged file, one that is not this project's checkpoint,
    one that carries code (torch.load(weights_only=True) refuses it) or one of another run
    gives one InputError."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds for a damaged or hostile file
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(f"checkpoint {path} is not readable: {detail}") from None
    missing = [k for k in _CHECKPOINT_KEYS if k not in payload] if isinstance(payload, dict) else []
    if not isinstance(payload, dict) or missing:
        lacks = f" (it lacks {', '.join(missing)})" if missing else ""
        raise InputError(f"{path} is not a training checkpoint of the studio{lacks}")
    if payload["version"] != CHECKPOINT_VERSION:
        raise InputError(f"checkpoint {path} has version {payload['version']!r}")
    saved = payload["config"]
    if not isinstance(saved, dict):
        raise InputError(f"checkpoint {path} holds no readable config")
    # a setting that an older checkpoint lacks was then its default
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    changed = [
        k
        for k, v in dataclasses.asdict(config).items()
        if k not in _RESUMABLE and saved.get(k, defaults[k]) != v
    ]
    if (
        isinstance(saved.get("learning_rate"), float)
        and config.learning_rate > saved["learning_rate"]
    ):
        changed.append(
            f"learning_rate (a resumed run may only lower it from {saved['learning_rate']:g})"
        )
    if changed:
        raise InputError(
            f"cannot resume from {path}: it was trained with other {', '.join(changed)}"
        )
    try:
        unet.load_state_dict(payload["model"])
        state.ema.load_state_dict(payload["ema"])
        state.optimizer.load_state_dict(payload["optimizer"])
        state.lr_scheduler.load_state_dict(payload["lr_scheduler"])
        if saved.get("learning_rate") != config.learning_rate:
            _set_learning_rate(state, config.learning_rate)
        if "torch_rng" in payload:
            torch.set_rng_state(payload["torch_rng"])
        state.step = int(payload["step"])
        state.wall_time = float(payload.get("wall_time", 0.0))
        commands, hardware = payload.get("commands", []), payload.get("hardware", [])
        if not all(isinstance(c, str) for c in [*commands, *hardware]):
            raise ValueError("its commands and hardware should be texts")
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = str(exc).splitlines()[0][:200]
        raise InputError(f"checkpoint {path} does not fit this run: {detail}") from None
    state.commands = [*commands, *state.commands]
    state.hardware = list(hardware)


def _set_learning_rate(state: TrainState, learning_rate: float) -> None:
    """A new base rate from the resumed step on; the warm-up factor stays the schedule's."""
    scheduler = state.lr_scheduler
    scheduler.base_lrs = [learning_rate for _ in scheduler.base_lrs]
    factors = [f(scheduler.last_epoch) for f in scheduler.lr_lambdas]
    for group, factor in zip(state.optimizer.param_groups, factors):
        group["initial_lr"] = learning_rate
        group["lr"] = learning_rate * factor
