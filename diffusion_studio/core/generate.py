"""One generation job, end to end: a frozen request in, a stream of Steps out.

The UI and the CLI both build a `SampleRequest` and call `generate`. Plain sampling when no
source image is given; RePaint inpainting when a source and an inpaint_mask are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, get_args

import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.repaint import count_network_calls, jump_schedule, repaint
from diffusion_studio.core.sampling import Step, ddim_update, ddpm_update, randn_like, sample
from diffusion_studio.core.schedule import (
    TIMESTEP_SPACINGS,
    VARIANCE_TYPES,
    NoiseSchedule,
    TimestepSpacing,
    VarianceType,
)

Sampler = Literal["ddpm", "ddim"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SampleRequest:
    """Everything that decides the images of a run, apart from the model and the source/mask.

    Image i of a batch is drawn from seed + i, so it can be reproduced alone.
    """

    sampler: Sampler = "ddim"
    num_inference_steps: int = 50
    eta: float = 0.0
    timestep_spacing: TimestepSpacing | None = None  # None: the model's (diffusers: leading)
    variance_type: VarianceType | None = None  # DDPM only; None: the model's
    seed: int = 0
    batch_size: int = 1
    class_label: int | None = None  # None: unconditional (the null class)
    guidance_scale: float = 1.0
    jump_length: int = 10  # RePaint only, in inference steps
    jump_n_sample: int = 10  # RePaint only; 1 = no resampling

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_image(self, index: int) -> SampleRequest:
        """The request that makes image `index` of this batch alone: seed + index, batch 1."""
        return dataclasses.replace(self, seed=self.seed + index, batch_size=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRequest:
        """A request from `to_dict`'s output (e.g. PNG metadata); unknown keys are ignored."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key, value in values.items():
            wanted = (
                (int,) if key in _INT_FIELDS else (int, float) if key in _FLOAT_FIELDS else None
            )
            if value is None and key == "class_label":
                continue
            if wanted and (isinstance(value, bool) or not isinstance(value, wanted)):
                raise InputError(f"setting {key!r} should be a number, got {value!r}")
        return cls(**values)


_INT_FIELDS = {
    "num_inference_steps",
    "seed",
    "batch_size",
    "class_label",
    "jump_length",
    "jump_n_sample",
}
_FLOAT_FIELDS = {"eta", "guidance_scale"}


def validate(request: SampleRequest, model: DiffusionModel) -> None:
    """Raise InputError, with what to change, for a request this model cannot run."""
    r, T = request, model.schedule.num_train_timesteps
    if r.sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {r.sampler!r}; use ddpm or ddim")
    if not 1 <= r.num_inference_steps <= T:
        raise InputError(
            f"steps must be between 1 and {T} (the model's training steps), "
            f"got {r.num_inference_steps}"
        )
    if not 0.0 <= r.eta <= 1.0:
        raise InputError(f"eta must be between 0 and 1, got {r.eta}")
    if r.timestep_spacing is not None and r.timestep_spacing not in TIMESTEP_SPACINGS:
        raise InputError(
            f"unknown timestep spacing {r.timestep_spacing!r}; use {', '.join(TIMESTEP_SPACINGS)}"
        )
    if r.variance_type is not None and r.variance_type not in VARIANCE_TYPES:
        raise InputError(f"unknown variance {r.variance_type!r}; use {', '.join(VARIANCE_TYPES)}")
    if not 0 <= r.seed <= MAX_SEED - r.batch_size:
        raise InputError(f"the seed must be between 0 and {MAX_SEED - r.batch_size}")
    if r.batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {r.batch_size}")
    if r.guidance_scale < 0:
        raise InputError(f"the guidance scale must be 0 or more, got {r.guidance_scale}")
    if r.jump_length < 1 or r.jump_n_sample < 1:
        raise InputError("the jump length and the resample count must be at least 1")
    if r.class_label is not None:
        model.class_index(r.class_label)


def call_timesteps(request: SampleRequest, schedule: NoiseSchedule, inpaint: bool) -> list[int]:
    """The timestep of each network call of a run, in order (RePaint's go back up)."""
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing)
    if not inpaint:
        return timesteps
    ascending = timesteps[::-1]
    path = jump_schedule(request.num_inference_steps, request.jump_length, request.jump_n_sample)
    return [ascending[cur] for cur, nxt in pairwise(path) if nxt < cur]


def network_calls(request: SampleRequest, inpaint: bool) -> int:
    """How many network calls (Steps) a run of this request makes."""
    if not inpaint:
        return request.num_inference_steps
    path = jump_schedule(request.num_inference_steps, request.jump_length, request.jump_n_sample)
    return count_network_calls(path)


def generate(
    model: DiffusionModel,
    request: SampleRequest,
    source: torch.Tensor | None = None,
    inpaint_mask: torch.Tensor | None = None,
) -> Iterator[Step]:
    """Validate the request, then return the stream of Steps that makes its images.

    source (1, C, H, W) in [-1, 1] at the model's size and inpaint_mask (1, 1, H, W), 1 =
    generate, select RePaint; both or neither. The last Step's x_t holds the images.
    """
    validate(request, model)
    schedule, device = model.schedule, model.device
    channels, (height, width) = model.info.in_channels, model.info.resolution
    if (source is None) != (inpaint_mask is None):
        raise InputError("inpainting needs both a source image and a mask")
    generators = [
        torch.Generator("cpu").manual_seed(request.seed + i) for i in range(request.batch_size)
    ]
    x_T = randn_like(
        torch.empty(request.batch_size, channels, height, width, device=device), generators
    )
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing)
    if request.sampler == "ddpm":
        update = ddpm_update(schedule, generators, request.variance_type)
    else:
        update = ddim_update(schedule, generators, request.eta)
    model_fn = model.model_fn(request.class_label, request.guidance_scale, request.batch_size)
    if source is None or inpaint_mask is None:
        return sample(model_fn, x_T, timesteps, update)
    if tuple(source.shape[1:]) != (channels, height, width):
        raise InputError(
            f"the source image is {tuple(source.shape[1:])}, the model needs "
            f"({channels}, {height}, {width})"
        )
    if tuple(inpaint_mask.shape[-2:]) != (height, width):
        raise InputError(
            f"the mask is {inpaint_mask.shape[-1]}x{inpaint_mask.shape[-2]}, "
            f"the model needs {width}x{height}"
        )
    return repaint(
        model_fn,
        x_T,
        source.to(device),
        inpaint_mask.to(device),
        schedule,
        timesteps,
        update,
        generators,
        jump_length=request.jump_length,
        jump_n_sample=request.jump_n_sample,
    )


def export_metadata(
    request: SampleRequest, model: DiffusionModel, inpaint: bool
) -> tuple[dict[str, Any], str]:
    """What an exported PNG carries: the JSON settings that reproduce it, and A1111's text."""
    from diffusion_studio import __version__

    metadata = {
        "request": request.to_dict(),
        "model": model.info.name,
        "inpaint": inpaint,
        "version": __version__,
    }
    return metadata, parameters_text(request, model, inpaint)


def parameters_text(request: SampleRequest, model: DiffusionModel, inpaint: bool) -> str:
    """The request in A1111's "parameters" format, which other tools read from a PNG."""
    info = model.info
    prompt = info.class_names[request.class_label] if request.class_label is not None else ""
    height, width = info.resolution
    fields = {
        "Steps": request.num_inference_steps,
        "Sampler": request.sampler.upper(),
        "Schedule type": request.timestep_spacing or model.schedule.timestep_spacing,
        "CFG scale": request.guidance_scale,
        "Seed": request.seed,
        "Size": f"{width}x{height}",
        "Model": info.name,
    }
    if request.sampler == "ddim":
        fields["Eta"] = request.eta
    if inpaint:
        fields["RePaint jump length"] = request.jump_length
        fields["RePaint resamples"] = request.jump_n_sample
    return prompt + "\n" + ", ".join(f"{k}: {v}" for k, v in fields.items())
