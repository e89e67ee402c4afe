"""The configs a model folder's config.json may hold, checked before anything is built from
them: a UNet2DModel's (diffusers' keys, the studio's own, their types and ranges) and a
noise-aware classifier's. A value out of place is one InputError naming the file and the key.
Reading the folder is core/model_files.py's."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

from diffusers import UNet2DModel

from diffusion_studio.core.classifier import CLASSIFIER_CLASS, NoiseClassifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_CLASSES, MAX_RESOLUTION
from diffusion_studio.core.model import SUPPORTED_CHANNELS

_MAY_BE_NULL = ("attention_head_dim", "norm_num_groups")  # numbers whose null diffusers takes
_UNET_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(UNet2DModel.__init__).parameters.items()
    if name != "self"
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_unet_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
    """The config with diffusers' defaults filled in, once every value the studio relies on has
    the right type and range. Raises InputError naming the key."""
    full = {**_UNET_DEFAULTS, **config}

    def refuse(key: str, wanted: str) -> None:
        raise InputError(f"{file}: {key} must be {wanted}, got {full.get(key)!r}")

    for key, value in config.items():  # each value of the kind of diffusers' default
        default = _UNET_DEFAULTS.get(key)
        if key in _MAY_BE_NULL and value is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            refuse(key, "true or false")
        number = isinstance(default, int | float) and not isinstance(default, bool)
        if number and not _is_number(value):
            refuse(key, "a finite number")
        if isinstance(default, str) and not isinstance(value, str):
            refuse(key, "a name")
    size = full["sample_size"]
    sides = size if isinstance(size, list) else [size]
    if len(sides) != (2 if isinstance(size, list) else 1) or not all(
        _is_int(s) and 1 <= s <= MAX_RESOLUTION for s in sides
    ):
        refuse(
            "sample_size", f"a whole number of pixels (or [height, width]) up to {MAX_RESOLUTION}"
        )
    for key in ("in_channels", "out_channels"):
        if not _is_int(full[key]):
            refuse(key, "a whole number")
    if full["in_channels"] not in SUPPORTED_CHANNELS:
        raise InputError(
            f"{file}: in_channels is {full['in_channels']}; the studio runs models of 1 (grey), "
            "3 (RGB) or 4 (RGBA) channels"
        )
    if full["out_channels"] not in (full["in_channels"], 2 * full["in_channels"]):
        raise InputError(
            f"{file}: out_channels is {full['out_channels']} for {full['in_channels']} in; a "
            "model outputs as many channels as it takes, or twice as many (a learned variance)"
        )
    blocks = full["block_out_channels"]
    if (
        not isinstance(blocks, list | tuple)
        or not 1 <= len(blocks) <= 8
        or not all(_is_int(c) and 1 <= c <= 16384 for c in blocks)
    ):
        refuse("block_out_channels", "a list of 1 to 8 whole numbers from 1 to 16384")
    for key in ("down_block_types", "up_block_types"):
        types = full[key]
        if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
            refuse(key, "a list of block names")
        if len(types) != len(blocks):
            refuse(key, f"a list of {len(blocks)} names, one per block_out_channels entry")
    if not _is_int(full["layers_per_block"]) or not 1 <= full["layers_per_block"] <= 64:
        refuse("layers_per_block", "a whole number from 1 to 64")
    groups = full["norm_num_groups"]
    if groups is not None and (not _is_int(groups) or groups < 1):
        refuse("norm_num_groups", "a whole number of at least 1")
    if groups is not None and any(c % groups for c in blocks):
        refuse("norm_num_groups", f"a divisor of every block_out_channels entry {list(blocks)}")
    head_dim = full["attention_head_dim"]
    if head_dim is not None and (not _is_int(head_dim) or head_dim < 1):
        refuse("attention_head_dim", "a whole number of at least 1, or null")
    classes = full["num_class_embeds"]
    if classes is not None and (not _is_int(classes) or not 1 <= classes <= MAX_CLASSES + 1):
        refuse("num_class_embeds", f"a whole number from 1 to {MAX_CLASSES + 1}, or null")
    for key in ("norm_eps", "dropout", "mid_block_scale_factor"):
        value = full[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            refuse(key, "a finite number")
    heads, width = full.get("attention_heads"), full.get("timestep_channels")
    if heads is not None and (not _is_int(heads) or not 1 <= heads <= 1024):
        refuse("attention_heads", "a whole number from 1 to 1024, or absent")
    if width is not None and (not _is_int(width) or width < 2 or width % 2 or width > 65536):
        refuse("timestep_channels", "an even whole number from 2 to 65536, or absent")
    scale = full.get("timestep_scale")
    if scale is not None and (not _is_number(scale) or not 0 < scale <= 1000):
        refuse("timestep_scale", "a number above 0 and at most 1000, or absent")
    factor = 2 ** (len(blocks) - 1)
    if any(s % factor for s in sides):
        refuse(
            "sample_size", f"a multiple of {factor} (the network halves it {len(blocks) - 1} times)"
        )
    return full


_CLASSIFIER_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(NoiseClassifier.__init__).parameters.items()
    if name != "self"
}


def check_classifier_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
    """A NoiseClassifier config with its defaults filled in: the encoder keys under the rules
    of a UNet2DModel's, then the classes and the pool."""
    full = {**_CLASSIFIER_DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
    unknown = sorted(set(full) - set(_CLASSIFIER_DEFAULTS))
    if unknown:
        raise InputError(f"{file}: {unknown[0]!r} is not a key of a {CLASSIFIER_CLASS}")
    encoder = {k: v for k, v in full.items() if k not in ("num_classes", "pool_head_dim")}
    types = full["down_block_types"]
    check_unet_config(
        {**encoder, "out_channels": full["in_channels"], "up_block_types": types}, file
    )
    if not isinstance(full["sample_size"], int):
        raise InputError(f"{file}: sample_size must be one whole number of pixels")
    classes, head = full["num_classes"], full["pool_head_dim"]
    if not _is_int(classes) or not 2 <= classes <= MAX_CLASSES:
        raise InputError(f"{file}: num_classes must be a whole number from 2 to {MAX_CLASSES}")
    last = full["block_out_channels"][-1]
    if not _is_int(head) or head < 1 or last % head:
        raise InputError(f"{file}: pool_head_dim must divide the last block's {last} channels")
    return full
