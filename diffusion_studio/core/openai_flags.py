"""guided-diffusion's and improved-diffusion's flags, as people paste them from those READMEs
(MODEL_FLAGS, DIFFUSION_FLAGS, CLASSIFIER_FLAGS, SAMPLE_FLAGS, in either spelling: --num_channels
or --num-channels): the presets of the published checkpoints and what each flag does in a
conversion.

A flag is applied (what the weights cannot show: the image size, the heads, T, the schedule,
what the network predicts and how it sees t), checked (what the weights show: channels, blocks,
attention, classes, a learned variance...; a mismatch is refused, naming the flag and what the
weights say; core/openai_configs.py checks them), or ignored and said so (fp16, dropout, the
losses of training, sampling flags). No torch here: `--help` and the window's importer read it
cheaply.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_TRAIN_TIMESTEPS

Role = Literal["apply", "check", "ignore", "sampling"]
Kind = Literal["int", "bool", "text", "numbers"]


@dataclass(frozen=True)
class OpenAIFlags:
    """The flags of a conversion: those the weights do not show, with guided-diffusion's
    script defaults, and `stated`, the flags given that the weights do show (checked)."""

    image_size: int | None = None
    num_heads: int = 4  # model_and_diffusion_defaults() of both codebases
    num_head_channels: int = -1
    num_heads_upsample: int = -1
    use_new_attention_order: bool = False
    diffusion_steps: int = 1000
    noise_schedule: Literal["linear", "cosine"] = "linear"
    predict_xstart: bool = False  # the network predicts x_0 (ModelMeanType.START_X)
    # improved-diffusion's default (True there, False in guided-diffusion): the network sees
    # t * 1000 / T, which matters when T is not 1000 (IDDPM's T = 4000)
    rescale_timesteps: bool = False
    sigma_small: bool = False  # without a learned variance: beta-tilde, else beta (their default)
    class_names: Literal["imagenet"] | None = None
    source: str = ""  # where the checkpoint is published, for the model's card
    stated: tuple[tuple[str, Any], ...] = ()  # (flag, value) of the flags the weights tell
    unused: tuple[tuple[str, Any], ...] = ()  # the flags given that change nothing here

    @property
    def timestep_scale(self) -> float | None:
        """What t is multiplied by before the network: 1000 / T under rescale_timesteps."""
        if not self.rescale_timesteps or self.diffusion_steps == 1000:
            return None
        return 1000 / self.diffusion_steps


@dataclass(frozen=True)
class FlagSpec:
    """One flag of their scripts: its name (underscore form), value kind, role, and a line."""

    name: str
    kind: Kind
    role: Role
    text: str

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")


FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("image_size", "int", "apply", "the image size the model was trained at"),
    FlagSpec("num_heads", "int", "apply", "attention heads at every level (default 4)"),
    FlagSpec("num_head_channels", "int", "apply", "the width of a head, instead of a count"),
    FlagSpec("num_heads_upsample", "int", "apply", "heads of the upsampling path"),
    FlagSpec("use_new_attention_order", "bool", "apply", "the qkv layout of the attention"),
    FlagSpec("diffusion_steps", "int", "apply", "T, the training steps (default 1000)"),
    FlagSpec("noise_schedule", "text", "apply", "linear (default) or cosine"),
    FlagSpec("predict_xstart", "bool", "apply", "the network predicts x0, not the noise"),
    FlagSpec("rescale_timesteps", "bool", "apply", "the network sees t * 1000 / T"),
    FlagSpec("sigma_small", "bool", "apply", "without a learned variance: beta-tilde, not beta"),
    FlagSpec("num_channels", "int", "check", "the first level's channels"),
    FlagSpec("num_res_blocks", "int", "check", "residual blocks per level"),
    FlagSpec("channel_mult", "numbers", "check", "each level's channel multiplier"),
    FlagSpec("attention_resolutions", "numbers", "check", "the resolutions with attention"),
    FlagSpec("class_cond", "bool", "check", "class-conditional (1,000 ImageNet classes)"),
    FlagSpec("learn_sigma", "bool", "check", "the network learns its variance"),
    FlagSpec("use_scale_shift_norm", "bool", "check", "scale-shift normalisation (FiLM)"),
    FlagSpec("resblock_updown", "bool", "check", "residual blocks up- and downsample"),
    FlagSpec("classifier_width", "int", "check", "a classifier's first level's channels"),
    FlagSpec("classifier_depth", "int", "check", "a classifier's residual blocks per level"),
    FlagSpec("classifier_attention_resolutions", "numbers", "check", "a classifier's attention"),
    FlagSpec("classifier_use_scale_shift_norm", "bool", "check", "a classifier's normalisation"),
    FlagSpec("classifier_resblock_updown", "bool", "check", "a classifier's downsampling"),
    FlagSpec("classifier_pool", "text", "check", "a classifier's pooling (attention)"),
    FlagSpec("use_fp16", "bool", "ignore", "half precision in their code"),
    FlagSpec("classifier_use_fp16", "bool", "ignore", "half precision in their code"),
    FlagSpec("use_checkpoint", "bool", "ignore", "gradient checkpointing"),
    FlagSpec("dropout", "text", "ignore", "training's dropout"),
    FlagSpec("use_kl", "bool", "ignore", "training's loss"),
    FlagSpec("rescale_learned_sigmas", "bool", "ignore", "training's loss"),
    FlagSpec("timestep_respacing", "text", "sampling", "the steps of sampling: --steps"),
    FlagSpec("use_ddim", "bool", "sampling", "the sampler: --sampler ddim"),
    FlagSpec("clip_denoised", "bool", "sampling", "x0 clipping: the model's clip_sample"),
    FlagSpec("batch_size", "int", "sampling", "images per batch: -n"),
    FlagSpec("num_samples", "int", "sampling", "how many images: -n"),
    FlagSpec("classifier_scale", "text", "sampling", "--classifier-scale"),
)
BY_NAME = {spec.name: spec for spec in FLAGS}

_ADM = {"num_head_channels": 64}
_IDDPM = {"diffusion_steps": 4000, "noise_schedule": "cosine", "rescale_timesteps": True}
PRESETS: dict[str, OpenAIFlags] = {
    # RePaint (Lugmayr et al. 2022): its face and places models, trained with guided-diffusion
    "repaint-celeba256": OpenAIFlags(256, **_ADM, source="RePaint: celeba256_250000.pt"),
    "repaint-places256": OpenAIFlags(256, **_ADM, source="RePaint: places256_300000.pt"),
    # ADM (Dhariwal & Nichol 2021), guided-diffusion's README
    "adm-imagenet64": OpenAIFlags(
        64, **_ADM, use_new_attention_order=True, noise_schedule="cosine",
        class_names="imagenet", source="guided-diffusion: 64x64_diffusion.pt",
    ),
    "adm-imagenet128": OpenAIFlags(
        128, num_heads=4, class_names="imagenet", source="guided-diffusion: 128x128_diffusion.pt"
    ),
    "adm-imagenet256": OpenAIFlags(
        256, **_ADM, class_names="imagenet", source="guided-diffusion: 256x256_diffusion.pt"
    ),
    "adm-imagenet256-uncond": OpenAIFlags(
        256, **_ADM, source="guided-diffusion: 256x256_diffusion_uncond.pt"
    ),
    "adm-imagenet512": OpenAIFlags(
        512, **_ADM, class_names="imagenet", source="guided-diffusion: 512x512_diffusion.pt"
    ),
    "adm-lsun": OpenAIFlags(256, **_ADM, source="guided-diffusion: lsun_bedroom/cat/horse.pt"),
    # ADM's noise-aware ImageNet classifiers (guided-diffusion's classifier flags: width 128,
    # heads of 64, attention pooling), for classifier guidance of the models above
    "adm-classifier64": OpenAIFlags(
        64, **_ADM, noise_schedule="cosine", class_names="imagenet",
        source="guided-diffusion: 64x64_classifier.pt",
    ),
    "adm-classifier128": OpenAIFlags(
        128, **_ADM, class_names="imagenet", source="guided-diffusion: 128x128_classifier.pt"
    ),
    "adm-classifier256": OpenAIFlags(
        256, **_ADM, class_names="imagenet", source="guided-diffusion: 256x256_classifier.pt"
    ),
    "adm-classifier512": OpenAIFlags(
        512, **_ADM, class_names="imagenet", source="guided-diffusion: 512x512_classifier.pt"
    ),
    # IDDPM (Nichol & Dhariwal 2021), improved-diffusion's README; its scripts' defaults
    # rescale the timesteps
    "iddpm-cifar10": OpenAIFlags(
        32, **_IDDPM, source="improved-diffusion: cifar10_uncond_50M_500K.pt"
    ),
    "iddpm-imagenet64": OpenAIFlags(
        64, **_IDDPM, source="improved-diffusion: imagenet64_uncond_100M_1500K.pt"
    ),
}  # fmt: skip


def parse_value(spec: FlagSpec, text: str | bool) -> Any:
    """A flag's value as their scripts read it (str2bool's words for a bool: yes/true/t/y/1,
    no/false/f/n/0); an InputError naming the flag."""
    if isinstance(text, bool):  # a bool flag given alone: --class-cond
        if spec.kind != "bool":
            raise InputError(f"{spec.cli} needs a value")
        return text
    value = text.strip()
    if spec.kind == "bool":
        words = {"yes": True, "true": True, "t": True, "y": True, "1": True,
                 "no": False, "false": False, "f": False, "n": False, "0": False}  # fmt: skip
        if value.lower() not in words:
            raise InputError(f"{spec.cli} takes True or False, got {text!r}")
        return words[value.lower()]
    if spec.kind == "int":
        if not value.lstrip("-").isascii() or not value.lstrip("-").isdigit():
            raise InputError(f"{spec.cli} takes a whole number, got {text!r}")
        number = int(value)
        if not (number == -1 or 1 <= number <= 100_000):
            raise InputError(f"{spec.cli} must be from 1 to 100,000 (or -1), got {number}")
        return number
    if spec.kind == "numbers":
        if value == "":
            return ()
        try:
            numbers = tuple(float(part) for part in value.split(",") if part.strip())
        except ValueError:
            numbers = ()
        if not value.isascii() or not numbers or not all(0 < n <= 100_000 for n in numbers):
            raise InputError(f"{spec.cli} takes positive numbers separated by commas, got {text!r}")
        return numbers
    if len(value) > 100 or not value.isascii():
        raise InputError(f"{spec.cli}: {text!r:.40} is not a value of it")
    return value


def flags_for(preset: str | None, given: Mapping[str, Any] | None = None) -> OpenAIFlags:
    """A preset's flags (or the scripts' defaults), with the flags `given` on top: a mapping of
    underscore names to values already parsed (None: not given). The ones the weights tell go
    to `stated`, to be checked; ignored and sampling flags to `unused` (see `ignored`)."""
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    flags = PRESETS[preset] if preset else OpenAIFlags()
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise InputError(f"--{unknown[0]} is not a flag of guided-diffusion's scripts")
    applied = {k: v for k, v in given.items() if BY_NAME[k].role == "apply"}
    if applied.get("noise_schedule", "linear") not in ("linear", "cosine"):
        raise InputError(f"--noise-schedule is linear or cosine, got {applied['noise_schedule']!r}")
    stated = tuple((k, v) for k, v in given.items() if BY_NAME[k].role == "check")
    if dict(stated).get("classifier_pool", "attention") != "attention":
        raise InputError(
            f"--classifier-pool {dict(stated)['classifier_pool']}: only ADM's attention pooling "
            "is supported"
        )
    unused = tuple((k, v) for k, v in given.items() if BY_NAME[k].role in ("ignore", "sampling"))
    flags = replace(flags, **applied, stated=flags.stated + stated, unused=unused)
    steps = flags.diffusion_steps
    if not 2 <= steps <= MAX_TRAIN_TIMESTEPS:
        raise InputError(
            f"--diffusion-steps must be from 2 to {MAX_TRAIN_TIMESTEPS:,}, got {steps}"
        )
    if flags.noise_schedule == "linear" and 0.02 * 1000 / steps >= 1:
        raise InputError(
            f"--diffusion-steps {steps} with the linear schedule makes betas of 1 or more "
            "(their linear schedule ends at 0.02 * 1000 / T): T must be above 20"
        )
    return flags


def ignored(flags: OpenAIFlags) -> str | None:
    """A note naming the flags given that do not change the network or its diffusion."""
    kept = [f"--{k} {v}" for k, v in flags.unused if BY_NAME[k].role == "ignore"]
    later = [f"--{k} ({BY_NAME[k].text})" for k, _ in flags.unused if BY_NAME[k].role == "sampling"]
    parts = []
    if kept:
        parts.append(f"ignored, as they do not change the network's output: {', '.join(kept)}")
    if later:
        parts.append(f"sampling flags, chosen when sampling: {', '.join(later)}")
    return "; ".join(parts) or None


def flags_from_text(text: str) -> dict[str, Any]:
    """Flags pasted as one text (the window's importer): `--name value`, `--name=value`, or a
    bool flag alone, in either spelling; shell variables and quotes are not expanded beyond
    shlex's splitting (nothing is run). InputError for an unknown flag or value."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"the flags cannot be split into words: {exc}") from None
    given: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            raise InputError(f"{word!r:.40} is not a flag (flags start with --)")
        name, _, value = word[2:].partition("=")
        spec = BY_NAME.get(name.replace("-", "_"))
        if spec is None:
            raise InputError(f"--{name:.40} is not a flag of guided-diffusion's scripts")
        if not value and "=" not in word:
            following = words[i + 1] if i + 1 < len(words) else None
            if following is None or (following.startswith("--") and spec.kind == "bool"):
                value = True  # type: ignore[assignment]
            else:
                value, i = following, i + 1
        given[spec.name] = parse_value(spec, value)
        i += 1
    return given


def describe(flags: OpenAIFlags) -> dict[str, Any]:
    """The flags as the model's card keeps them."""
    kept = {k: v for k, v in flags.__dict__.items() if k not in ("source", "stated", "unused")}
    return {**kept, **{k: list(v) if isinstance(v, tuple) else v for k, v in flags.stated}}
