"""One generation job, end to end: a frozen request in, a stream of Steps out.

The UI and the CLI both build a `SampleRequest` and call `generate`. Plain sampling when no
source image is given; RePaint inpainting when a source and an inpaint_mask are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.limits import (
    MAX_BATCH,
    MAX_NETWORK_CALLS,
    activation_bytes,
    format_bytes,
    memory_budget,
    repaint_calls,
)
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.repaint import jump_schedule, repaint
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


MAX_GUIDANCE = 100.0  # A1111's CFG slider ends at 30


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
    # DDIM: eps re-derived from the clipped x_0 (diffusers' use_clipped_model_output=True,
    # guided-diffusion's choice); False is diffusers' DDIMScheduler.step default
    use_clipped_model_output: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_image(self, index: int) -> SampleRequest:
        """The request that makes image `index` of this batch alone: seed + index, batch 1."""
        return dataclasses.replace(self, seed=self.seed + index, batch_size=1)

    @classmethod
    def from_dict(cls, data: object) -> SampleRequest:
        """A request from `to_dict`'s output (PNG metadata, an autosave, the settings), checked
        field by field: types, known names, finite numbers in range. Unknown keys are ignored;
        InputError names the first bad field."""
        if not isinstance(data, Mapping):
            raise InputError(f"the settings should be a JSON object, got {type(data).__name__}")
        values = {}
        for name, kind in _FIELD_KINDS.items():
            if name not in data:
                continue
            value = data[name]
            if not _of_kind(value, kind):
                raise InputError(
                    f"setting {name!r} should be {_KIND_TEXT[kind]}, got {value!r:.80}"
                )
            values[name] = float(value) if kind == "float" else value
        request = cls(**values)
        request.check()
        return request

    def check(self) -> None:
        """Raise InputError for a value no model can run (any model-specific limit aside)."""
        r = self
        if r.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {r.sampler!r}; use ddpm or ddim")
        for name in ("eta", "guidance_scale"):
            value = getattr(r, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name.replace('_', ' ')} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InputError(f"{name.replace('_', ' ')} must be a finite number, got {value}")
        if not 0.0 <= r.eta <= 1.0:
            raise InputError(f"eta must be between 0 and 1, got {r.eta}")
        if not 0.0 <= r.guidance_scale <= MAX_GUIDANCE:
            raise InputError(
                f"the guidance scale must be from 0 to {MAX_GUIDANCE:g}, got {r.guidance_scale}"
            )
        if r.timestep_spacing is not None and r.timestep_spacing not in TIMESTEP_SPACINGS:
            choices = ", ".join(TIMESTEP_SPACINGS)
            raise InputError(f"unknown timestep spacing {r.timestep_spacing!r}; use {choices}")
        if r.variance_type is not None and r.variance_type not in VARIANCE_TYPES:
            raise InputError(
                f"unknown variance {r.variance_type!r}; use {', '.join(VARIANCE_TYPES)}"
            )
        if not 1 <= r.batch_size <= MAX_BATCH:
            raise InputError(f"the batch size must be from 1 to {MAX_BATCH:,}, got {r.batch_size}")
        if not 0 <= r.seed <= MAX_SEED - r.batch_size:
            raise InputError(f"the seed must be between 0 and {MAX_SEED - r.batch_size}")
        if r.jump_length < 1 or r.jump_n_sample < 1:
            raise InputError("the jump length and the resample count must be at least 1")
        if r.class_label is not None and r.class_label < 0:
            raise InputError(f"the class must be 0 or more, got {r.class_label}")


_FIELD_KINDS = {
    "sampler": "text",
    "num_inference_steps": "int",
    "eta": "float",
    "timestep_spacing": "text or null",
    "variance_type": "text or null",
    "seed": "int",
    "batch_size": "int",
    "class_label": "int or null",
    "guidance_scale": "float",
    "jump_length": "int",
    "jump_n_sample": "int",
    "use_clipped_model_output": "bool",
}
_KIND_TEXT = {
    "text": "a name",
    "text or null": "a name or null",
    "int": "a whole number",
    "int or null": "a whole number or null",
    "float": "a number",
    "bool": "true or false",
}


def _of_kind(value: object, kind: str) -> bool:
    if value is None:
        return kind.endswith("or null")
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind.startswith("text"):
        return isinstance(value, str) and len(value) <= 64
    if kind.startswith("int"):
        return isinstance(value, int) and abs(value) <= 2**64
    return isinstance(value, int | float)


def validate(request: SampleRequest, model: DiffusionModel, inpaint: bool = False) -> None:
    """Raise InputError, with what to change, for a request this model cannot run: its
    values, and the network calls and memory it needs (checked before anything is made)."""
    request.check()
    r, T = request, model.schedule.num_train_timesteps
    if not 1 <= r.num_inference_steps <= T:
        raise InputError(
            f"steps must be between 1 and {T} (the model's training steps), "
            f"got {r.num_inference_steps}"
        )
    if r.class_label is not None:
        model.class_index(r.class_label)
    info = model.info
    if info.conditional and info.null_class is None:
        if r.class_label is None:
            raise InputError(f"{info.name} has no null class: choose a class")
        if r.guidance_scale != 1.0:
            raise InputError(f"{info.name} was trained without a null class, so guidance must be 1")
    check_resources(request, model, inpaint)


def check_resources(
    request: SampleRequest, model: DiffusionModel, inpaint: bool, frames_kept: int = 0
) -> None:
    """Refuse a run whose network calls or memory are over the limits (core/limits.py).

    frames_kept: trajectory frames (x_t and x0 of the batch) the caller keeps in memory.
    """
    calls = network_calls(request, inpaint)
    if calls > MAX_NETWORK_CALLS:
        raise InputError(
            f"this RePaint run would make {calls:,} network calls; the limit is "
            f"{MAX_NETWORK_CALLS:,}: lower the resample count (--jump-n-sample) or the steps"
        )
    height, width = model.info.resolution
    guided = model.info.conditional and request.guidance_scale not in (0.0, 1.0)
    images = request.batch_size * (2 if guided else 1)
    pixels = request.batch_size * height * width * model.info.in_channels
    need = images * activation_bytes(model.unet.config, height, width) + pixels * (
        8 + 2 * frames_kept
    )
    budget = memory_budget(model.device.type, model.device.index)
    if need > budget:
        raise InputError(
            f"{request.batch_size} images of {width}x{height} need about {format_bytes(need)} "
            f"on {model.device}, and {format_bytes(budget)} is free: generate fewer at a time "
            "(a smaller batch, -n)"
        )


def call_timesteps(request: SampleRequest, schedule: NoiseSchedule, inpaint: bool) -> list[int]:
    """The timestep of each network call of a run, in order (RePaint's go back up)."""
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing)
    if not inpaint:
        return timesteps
    ascending = timesteps[::-1]
    path = jump_schedule(request.num_inference_steps, request.jump_length, request.jump_n_sample)
    return [ascending[cur] for cur, nxt in pairwise(path) if nxt < cur]


def network_calls(request: SampleRequest, inpaint: bool) -> int:
    """How many network calls (Steps) a run of this request makes, counted, not built."""
    if not inpaint:
        return request.num_inference_steps
    return repaint_calls(request.num_inference_steps, request.jump_length, request.jump_n_sample)


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
    validate(request, model, inpaint=source is not None)
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
        update = ddim_update(schedule, generators, request.eta, request.use_clipped_model_output)
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


@dataclass(frozen=True)
class PngRecord:
    """What an exported PNG says of how it was made, checked before anything is applied."""

    request: SampleRequest
    model: str
    inpaint: bool
    version: str

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> PngRecord:
        """The record of export_metadata's output; InputError names what is wrong."""
        request = metadata.get("request")
        if not isinstance(request, Mapping):
            raise InputError('it has no settings ("request") object')
        model, inpaint = metadata.get("model", ""), metadata.get("inpaint", False)
        version = metadata.get("version", "")
        if not isinstance(model, str) or len(model) > 200:
            raise InputError("its model name is not a text of at most 200 characters")
        if not isinstance(version, str) or len(version) > 40:
            raise InputError("its version is not a short text")
        if not isinstance(inpaint, bool):
            raise InputError("its inpaint flag is not true or false")
        requests = metadata.get("requests", [])
        if not isinstance(requests, list) or len(requests) > 100_000:
            raise InputError("its list of requests is not a list")
        for each in requests:  # a grid's rows: checked too, though only the first is applied
            SampleRequest.from_dict(each)
        return cls(SampleRequest.from_dict(request), model, inpaint, version)


def read_record(path: str | Path) -> PngRecord | None:
    """The record of a PNG the studio exported; None for a PNG without one. A damaged or
    hostile record is one InputError naming the file, and nothing of it is applied."""
    metadata = read_png_metadata(path)
    if metadata is None:
        return None
    try:
        return PngRecord.from_metadata(metadata)
    except InputError as exc:
        raise InputError(f"the settings in {Path(path).name} are unreadable: {exc}") from None


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
        if not request.use_clipped_model_output:
            fields["DDIM eps"] = "unclipped"
    if inpaint:
        fields["RePaint jump length"] = request.jump_length
        fields["RePaint resamples"] = request.jump_n_sample
    return prompt + "\n" + ", ".join(f"{k}: {v}" for k, v in fields.items())
