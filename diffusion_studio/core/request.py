"""What a person asks of a run, without torch: the SampleRequest, the names of its options,
and the sampler table that the command line, the sampler panel, the records and the
evaluation are all built from.

A new sampler is an update factory in core/sampling.py and a row of SAMPLERS here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_BATCH, MAX_NETWORK_CALLS, MAX_TRAIN_TIMESTEPS

Sampler = Literal["ddpm", "ddim", "dpmpp_2m"]
TimestepSpacing = Literal["leading", "trailing", "linspace", "quadratic"]
VarianceType = Literal["fixed_small", "fixed_large", "learned_range", "learned"]
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
TIMESTEP_SPACINGS: tuple[str, ...] = get_args(TimestepSpacing)
VARIANCE_TYPES: tuple[str, ...] = get_args(VarianceType)
FIXED_VARIANCES = ("fixed_small", "fixed_large")
LEARNED_VARIANCES = ("learned_range", "learned")  # the network's second half of channels
VARIANCE_LABELS = {
    "fixed_small": "beta-tilde (posterior)",
    "fixed_large": "beta (larger)",
    "learned_range": "learned (the model's)",
    "learned": "learned (log variance)",
}

MAX_SEED = 2**63 - 1
MAX_GUIDANCE = 100.0  # A1111's CFG slider ends at 30
DEFAULT_GUIDANCE = 3.0  # what a class-conditional model with a null class opens on
MAX_CLASSIFIER_SCALE = 100.0  # ADM's best ImageNet scales are 1 to 10


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler: how it is named and explained, which request options it reads (beside
    the steps, spacing, seed and guidance that every sampler takes), and its update factory,
    a function of core.sampling called as factory(schedule, generators, **options)."""

    name: str
    label: str
    tip: str
    options: tuple[str, ...]
    update: str


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec(
        "ddpm",
        "DDPM",
        "Ancestral sampling (Ho et al. 2020, Algorithm 2): noise is added at every step.",
        ("variance_type",),
        "ddpm_update",
    ),
    "ddim": SamplerSpec(
        "ddim",
        "DDIM",
        "DDIM (Song et al. 2021): the same model in fewer steps; eta sets how much noise.",
        ("eta", "use_clipped_model_output"),
        "ddim_update",
    ),
    "dpmpp_2m": SamplerSpec(
        "dpmpp_2m",
        "DPM++ 2M",
        "DPM-Solver++(2M) (Lu et al. 2022): a second-order ODE solver, as good in 10 steps as "
        "DDIM in 50; best with trailing spacing. Deterministic.",
        (),
        "dpmpp_2m_update",
    ),
}

OPTION_TIPS = {
    "num_inference_steps": "Network calls from noise to image; steps are respaced from the "
    "model's T.",
    "eta": "DDIM noise: 0 = deterministic, 1 = as much as DDPM (the posterior variance).",
    "use_clipped_model_output": "DDIM: re-derive the noise from the clipped x0 (guided-"
    "diffusion; eta 1 is then exactly DDPM). Off: the network's noise, as diffusers' "
    "DDIMScheduler does by default.",
    "timestep_spacing": "Which timesteps the steps visit: leading starts below T, trailing at "
    "T - 1, quadratic crowds them at low noise (the DDIM paper's CIFAR10 choice).",
    "variance_type": "DDPM noise per step: beta-tilde (the posterior's), beta (larger), or, for a "
    "model that learns it, its own (IDDPM: between the two, eq. 15).",
    "seed": "Image i of a batch uses seed + i: the same seed makes the same image.",
    "batch_size": "Images per run.",
    "class_label": "What to generate; unconditional uses the model's null class.",
    "guidance_scale": "Classifier-free guidance: 1 = the class alone, more = more typical of "
    "it, 0 = unconditional.",
    "classifier_scale": "Classifier guidance (Dhariwal & Nichol 2021): how hard a noise-aware "
    "classifier's gradient pushes each step towards the class; 0 = off.",
    "jump_length": "RePaint: after every this many steps, go back up this many steps and redo "
    "them.",
    "jump_n_sample": "RePaint: how often each stretch is redone (1 = none); harmonises the edges.",
    "precision": "The network's arithmetic: bfloat16 autocast (the sampler stays in float32) is "
    "faster on a CPU with bfloat16 instructions, at the same quality; auto: bfloat16 there, "
    "float32 elsewhere.",
}


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
    classifier_scale: float = 0.0  # classifier guidance's s; 0: no classifier
    jump_length: int = 10  # RePaint only, in inference steps
    jump_n_sample: int = 10  # RePaint only; 1 = no resampling
    # DDIM: eps re-derived from the clipped x_0 (diffusers' use_clipped_model_output=True,
    # guided-diffusion's choice); False is diffusers' DDIMScheduler.step default
    use_clipped_model_output: bool = True
    # the network's arithmetic; None: the device's (core.model.default_precision)
    precision: Precision | None = None

    @property
    def spec(self) -> SamplerSpec:
        return SAMPLERS[self.sampler]

    def options(self) -> dict[str, Any]:
        """The sampler's own options, by name, as its update factory takes them."""
        return {name: getattr(self, name) for name in self.spec.options}

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
                wanted = _KIND_TEXT[kind]
                raise InputError(f"setting {name!r} should be {wanted}, got {value!r:.80}")
            values[name] = float(value) if kind == "float" else value
        request = cls(**values)
        request.check()
        return request

    @classmethod
    def from_record(cls, data: object) -> SampleRequest:
        """A request as a written record holds it: one written before the precision was
        recorded was made in float32, and is made again in float32."""
        if isinstance(data, Mapping) and "precision" not in data:
            data = {**data, "precision": "float32"}
        return cls.from_dict(data)

    def check(self) -> None:
        """Raise InputError for a value no model can run (any model-specific limit aside)."""
        r = self
        if r.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {r.sampler!r}; use {', '.join(SAMPLERS)}")
        for name in ("eta", "guidance_scale", "classifier_scale"):
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
        if not 0.0 <= r.classifier_scale <= MAX_CLASSIFIER_SCALE:
            raise InputError(
                f"the classifier scale must be from 0 to {MAX_CLASSIFIER_SCALE:g}, "
                f"got {r.classifier_scale}"
            )
        if r.classifier_scale and r.class_label is None:
            raise InputError("classifier guidance steers towards a class: choose one")
        if r.timestep_spacing is not None and r.timestep_spacing not in TIMESTEP_SPACINGS:
            choices = ", ".join(TIMESTEP_SPACINGS)
            raise InputError(f"unknown timestep spacing {r.timestep_spacing!r}; use {choices}")
        if r.precision is not None and r.precision not in PRECISIONS:
            raise InputError(f"unknown precision {r.precision!r}; use {', '.join(PRECISIONS)}")
        if r.variance_type is not None and r.variance_type not in VARIANCE_TYPES:
            choices = ", ".join(VARIANCE_TYPES)
            raise InputError(f"unknown variance {r.variance_type!r}; use {choices}")
        if not 1 <= r.batch_size <= MAX_BATCH:
            raise InputError(f"the batch size must be from 1 to {MAX_BATCH:,}, got {r.batch_size}")
        if not 0 <= r.seed <= MAX_SEED - r.batch_size:
            raise InputError(f"the seed must be between 0 and {MAX_SEED - r.batch_size}")
        bounded = (
            ("num_inference_steps", "steps", MAX_TRAIN_TIMESTEPS),
            ("jump_length", "the jump length", MAX_TRAIN_TIMESTEPS),
            ("jump_n_sample", "the resample count", MAX_NETWORK_CALLS),
        )
        for name, label, most in bounded:
            value = getattr(r, name)
            if not 1 <= value <= most:  # any model's limits: a field can show it
                raise InputError(f"{label} must be from 1 to {most:,}, got {value}")
        if r.class_label is not None and r.class_label < 0:
            raise InputError(f"the class must be 0 or more, got {r.class_label}")


def default_request(
    class_count: int, default_class: int, null_class: int | None, **settings: Any
) -> SampleRequest:
    """The request a model opens on, in the window and on the command line alike: a
    class-conditional model with a null class makes its default class at guidance 3; one
    without a null class its default class unguided; an unconditional model has no class."""
    if class_count:
        guidance = DEFAULT_GUIDANCE if null_class is not None else 1.0
        settings = {"class_label": default_class, "guidance_scale": guidance, **settings}
    return SampleRequest(**settings)


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
    "classifier_scale": "float",
    "jump_length": "int",
    "jump_n_sample": "int",
    "use_clipped_model_output": "bool",
    "precision": "text or null",
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
