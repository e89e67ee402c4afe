"""What an OpenAI checkpoint is, read from it alone: a guided- or improved-diffusion UNetModel
state dict or an ADM classifier (EncoderUNetModel), read safely (weights_only, no code run, every
float finite), and the network its shapes say (channels and their multipliers, blocks per level,
where attention is, resblock up/down, scale-shift norm, the class count). core/convert.py maps
it into a diffusers folder."""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.model_files import check_finite


@dataclass(frozen=True)
class Architecture:
    """What a UNetModel state dict's shapes say of its network."""

    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: tuple[float, ...]
    num_res_blocks: int
    attention_levels: frozenset[int]
    num_classes: int | None
    resblock_updown: bool
    use_scale_shift_norm: bool

    @property
    def learn_sigma(self) -> bool:
        return self.out_channels == 2 * self.in_channels

    @property
    def block_channels(self) -> list[int]:
        return [int(m * self.model_channels) for m in self.channel_mult]


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A guided- or improved-diffusion UNetModel state dict, read with weights_only=True and
    in float32; InputError saying what was expected and what was found."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip, a refused global (code), not a torch file...
        unsafe: list[str] = []
        with contextlib.suppress(Exception):  # not a torch checkpoint at all: said below
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        if unsafe:
            raise InputError(
                f"{path} was refused: it would import {', '.join(unsafe[:3])}, and the studio "
                "never runs code from a checkpoint"
            ) from None
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({detail})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError(f"{path} does not hold a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    for key, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(key, tensor, path)
    encoder = (
        "time_embed.0.weight",
        "input_blocks.0.0.weight",
        "middle_block.0.in_layers.0.weight",
    )
    unet = (
        all(k in state for k in encoder)
        and "out.2.weight" in state
        and any(k.startswith("output_blocks.") for k in state)
    )
    if not (unet or (all(k in state for k in encoder) and is_classifier(state))):
        found = _what_it_is(state)
        raise InputError(
            f"{path} is not an OpenAI UNetModel state dict (guided-diffusion or improved-"
            "diffusion: time_embed.*, input_blocks.*, output_blocks.*) nor a guided-diffusion "
            f"classifier (EncoderUNetModel with attention pooling); it looks like {found}"
        )
    return {k: v.float() for k, v in state.items()}


def is_classifier(state: dict[str, torch.Tensor]) -> bool:
    """An EncoderUNetModel with attention pooling (ADM's classifiers): no output blocks, and
    the pool's weights where the UNetModel has its last convolution."""
    pool = ("out.2.positional_embedding", "out.2.qkv_proj.weight", "out.2.c_proj.weight")
    return all(k in state for k in pool) and not any(k.startswith("output_blocks.") for k in state)


def _what_it_is(state: dict[str, torch.Tensor]) -> str:
    if not any(k.startswith("output_blocks.") for k in state) and any(
        k.startswith("out.") for k in state
    ):
        return "a guided-diffusion classifier with another pooling than attention"
    if any(k.startswith(("down_blocks.", "conv_in.")) for k in state):
        return "a diffusers UNet2DModel's weights: open its folder instead"
    names = sorted(state)[:3]
    return f"something else (its first keys: {', '.join(names) or 'none'})"


def infer_architecture(state: dict[str, torch.Tensor]) -> Architecture:
    """The network of a UNetModel state dict, from its shapes alone."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"output_blocks\.(\d+)\.", k))}
    upsamplers = [i for i in blocks if _is_upsampling(state, i)]
    levels = len(upsamplers) + 1
    if not blocks or len(blocks) % levels:
        raise InputError("the checkpoint's output blocks do not make whole levels")
    labels = state.get("label_emb.weight")
    return _architecture(
        state,
        levels,
        len(blocks) // levels - 1,
        out_channels=state["out.2.weight"].shape[0],
        num_classes=None if labels is None else labels.shape[0],
    )


def _architecture(
    state: dict[str, torch.Tensor],
    levels: int,
    n: int,
    out_channels: int,
    num_classes: int | None,
) -> Architecture:
    """What the input blocks (which the UNetModel and the EncoderUNetModel share) say."""
    model_channels = state["time_embed.0.weight"].shape[1]
    mult, attention, updown = _read_levels(state, model_channels, levels, n)
    emb = state["input_blocks.1.0.emb_layers.1.weight"].shape[0]
    first_out = state["input_blocks.1.0.out_layers.3.weight"].shape[0]
    return Architecture(
        in_channels=state["input_blocks.0.0.weight"].shape[1],
        out_channels=out_channels,
        model_channels=model_channels,
        channel_mult=mult,
        num_res_blocks=n,
        attention_levels=attention,
        num_classes=num_classes,
        resblock_updown=updown,
        use_scale_shift_norm=emb == 2 * first_out,
    )


def _read_levels(
    state: dict[str, torch.Tensor], model_channels: int, levels: int, n: int
) -> tuple[tuple[float, ...], frozenset[int], bool]:
    """Each level's channel multiplier and attention, and whether it downsamples with a
    ResBlock, from the input blocks (which the UNetModel and the EncoderUNetModel share)."""
    mult, attention, updown = [], set(), False
    for level in range(levels):
        first = 1 + level * (n + 1)
        key = f"input_blocks.{first}.0.out_layers.3.weight"
        if key not in state:
            raise InputError(f"the checkpoint lacks {key!r}, which its other weights imply")
        mult.append(state[key].shape[0] / model_channels)
        if f"input_blocks.{first}.1.qkv.weight" in state:
            attention.add(level)
        if level < levels - 1:
            down = first + n
            if f"input_blocks.{down}.0.in_layers.0.weight" in state:
                updown = True
            elif f"input_blocks.{down}.0.op.weight" not in state:
                raise InputError(
                    "the checkpoint downsamples without a convolution (conv_resample=False), "
                    "which diffusers' UNet2DModel does not build"
                )
    return tuple(mult), frozenset(attention), updown


def _is_upsampling(state: dict[str, torch.Tensor], block: int) -> bool:
    """An output block that ends a level: its last layer upsamples (a conv, or a ResBlock)."""
    layers = {
        int(m.group(1)) for k in state if (m := re.match(rf"output_blocks\.{block}\.(\d+)\.", k))
    }
    last = max(layers)
    return last > 0 and (
        f"output_blocks.{block}.{last}.conv.weight" in state
        or f"output_blocks.{block}.{last}.in_layers.0.weight" in state
    )


def infer_classifier_architecture(
    state: dict[str, torch.Tensor], image_size: int | None
) -> Architecture:
    """The network of an EncoderUNetModel state dict: its shapes, and the image size, which
    with the pool's token count says how many times it halves the image."""
    if image_size is None:
        raise InputError("the image size is not in the weights: give --image-size (or --preset)")
    tokens = state["out.2.positional_embedding"].shape[-1] - 1
    side = math.isqrt(tokens)
    halvings = math.log2(image_size / side) if side * side == tokens and side else -1.0
    if halvings < 0 or not halvings.is_integer():
        raise InputError(
            f"the classifier pools {tokens} positions, which is no square of a power-of-two "
            f"fraction of {image_size}x{image_size}: check --image-size"
        )
    levels = int(halvings) + 1
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"input_blocks\.(\d+)\.", k))}
    if len(blocks) % levels or len(blocks) // levels < 2:
        raise InputError(
            f"the classifier's {len(blocks)} input blocks do not make {levels} whole levels "
            f"at {image_size}x{image_size}: check --image-size"
        )
    classes = state["out.2.c_proj.weight"].shape[0]  # the classifier's output: its classes
    return _architecture(state, levels, len(blocks) // levels - 1, classes, None)
