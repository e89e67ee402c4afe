"""What decides a training run (TrainConfig) and the network sizes, apart from the training code,
so that the command line can offer them without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import (
    MAX_BATCH,
    MAX_TRAIN_RESOLUTION,
    MAX_TRAIN_STEPS,
    MAX_TRAIN_TIMESTEPS,
)

# name: (block_out_channels, layers_per_block, levels with self-attention)
UNET_PRESETS: dict[str, tuple[tuple[int, ...], int, tuple[int, ...]]] = {
    "tiny": ((16, 32), 1, ()),  # tests and smoke runs
    "small": ((32, 64, 64, 128), 1, (2,)),  # 3.0 M parameters
    # small's 32x32 and 16x16 levels, twice its channels at 8x8 and 4x4, where a step costs
    # little: 10.1 M parameters for 1.7x small's time per step
    "medium": ((32, 64, 128, 256), 1, (2,)),
    "base": ((64, 128, 128, 256), 2, (2,)),  # about 20 M, for a GPU
}


# noise-aware classifiers (train-classifier): block_out_channels, as in core/classifier.py
CLASSIFIER_PRESETS: dict[str, tuple[int, ...]] = {
    "tiny": (16, 32),  # tests and smoke runs
    "small": (32, 64, 128),  # the embedded model's guidance classifier: 1.4 M parameters
}
LR_SCHEDULES = ("constant", "linear", "cosine")
ACCURACY_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)  # t / (T - 1) at which held-out accuracy is told


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Saved in every checkpoint and in the model."""

    data: str
    output: str
    resolution: int = 32
    preset: str = "small"
    prediction_type: str = "epsilon"
    beta_schedule: str = "linear"
    num_train_timesteps: int = 1000
    steps: int = 20_000
    batch_size: int = 64
    learning_rate: float = 3e-4
    warmup_steps: int = 500
    # after the warm-up: "constant", or decaying to 0 at `steps` ("linear", "cosine")
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    ema_decay: float = 0.9995
    p_uncond: float = 0.1  # Ho & Salimans 2022: 0.1-0.2 works for classifier-free guidance
    hflip: bool = False
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 2000
    checkpoint_dir: str | None = None  # default: OUTPUT-checkpoints beside the output
    init_from: str | None = None  # a model folder whose weights start the run (fine-tuning)
    name: str | None = None
    license: str = ""
    data_description: str = ""
    # "diffusion": a UNet2DModel (Algorithm 1); "classifier": a noise-aware classifier of
    # x_t ~ q(x_t | x_0) at t uniform, under the noise schedule of the model folder noise_of
    # (None: the embedded default model), with a held-out share of the images
    task: str = "diffusion"
    noise_of: str | None = None
    holdout: float = 0.0

    @property
    def checkpoints(self) -> Path:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        output = Path(self.output)
        return output.with_name(output.name + "-checkpoints")

    def validate(self) -> None:
        """Raise InputError, saying what to change, for settings no run can train with."""
        presets = CLASSIFIER_PRESETS if self.task == "classifier" else UNET_PRESETS
        if self.task not in ("diffusion", "classifier"):
            raise InputError(f"unknown task {self.task!r}")
        if self.preset not in presets:
            raise InputError(f"unknown preset {self.preset!r}; use {', '.join(presets)}")
        if not 0.0 <= self.holdout <= 0.5 or not math.isfinite(self.holdout):
            raise InputError("the held-out share must be from 0 to 0.5")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise InputError("the prediction type must be epsilon or v_prediction")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"the learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}")
        if self.beta_schedule not in ("linear", "cosine"):
            raise InputError("the beta schedule must be linear or cosine")
        for name in ("learning_rate", "ema_decay", "p_uncond", "weight_decay", "holdout"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"{name.replace('_', ' ')} must be a finite number")
        for name in ("steps", "batch_size", "checkpoint_every", "sample_every", "resolution"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', ' ')} must be at least 1")
        if self.warmup_steps < 0:
            raise InputError("the warm-up must be 0 steps or more")
        if not 2 <= self.num_train_timesteps <= MAX_TRAIN_TIMESTEPS:
            raise InputError(f"the training timesteps must be 2 to {MAX_TRAIN_TIMESTEPS}")
        if self.resolution > MAX_TRAIN_RESOLUTION:
            raise InputError(
                f"--resolution {self.resolution} is over the limit of {MAX_TRAIN_RESOLUTION} "
                "pixels; train at a smaller size"
            )
        levels = (
            len(presets[self.preset]) if self.task == "classifier" else len(presets[self.preset][0])
        )
        factor = 2 ** (levels - 1)
        if self.resolution % factor:
            raise InputError(
                f"the {self.preset} preset halves the image {factor.bit_length() - 1} times, so "
                f"--resolution must be a multiple of {factor}; {self.resolution} is not"
            )
        if self.steps > MAX_TRAIN_STEPS or self.batch_size > MAX_BATCH:
            raise InputError(
                f"--steps is at most {MAX_TRAIN_STEPS:,} and --batch-size at most {MAX_BATCH:,}"
            )
        if not 0.0 <= self.p_uncond < 1.0:
            raise InputError("the label drop probability must be in [0, 1)")
        if not 0.0 < self.ema_decay < 1.0:
            raise InputError("the EMA decay must be in (0, 1)")
        if self.learning_rate <= 0:
            raise InputError("the learning rate must be positive")
        if self.weight_decay < 0:
            raise InputError("the weight decay must be 0 or more")


def classifier_defaults() -> TrainConfig:
    """What train-classifier starts from: a shorter run, bigger batches (a classifier step is
    cheap), a quicker EMA, the held-out accuracy every 500 steps and a tenth of the images
    kept out for it."""
    return TrainConfig(
        data="",
        output="",
        task="classifier",
        steps=4000,
        batch_size=128,
        warmup_steps=100,
        ema_decay=0.999,
        checkpoint_every=500,
        sample_every=500,
        holdout=0.1,
    )
