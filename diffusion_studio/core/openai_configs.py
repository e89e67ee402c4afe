"""The diffusers configs an OpenAI checkpoint's network makes: UNet2DModel's (with the studio's
two keys, `attention_heads` and `timestep_channels`, where UNet2DModel alone cannot say it), the
noise-aware classifier's, and the scheduler's; and, before them, the check of the flags the
weights can tell against what the weights say. The architecture comes from the weights
(core/checkpoint_shapes.py), the rest from a preset or guided-diffusion's flags
(core/openai_flags.py)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from diffusion_studio.core.checkpoint_shapes import Architecture
from diffusion_studio.core.classifier import NoiseClassifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_RESOLUTION
from diffusion_studio.core.openai_flags import BY_NAME, OpenAIFlags

# channel_mult "" in create_model: the multipliers of each image size (improved-diffusion's 32)
_DEFAULT_MULT = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4),
                 64: (1, 2, 3, 4), 32: (1, 2, 2, 2)}  # fmt: skip


def check_stated(flags: OpenAIFlags, arch: Architecture, classifier: bool) -> None:
    """Refuse, in one line, the flags given that the weights contradict, each with what the
    weights say. The flags of the other kind of network are left to `unchecked`."""
    wrong = []
    size = flags.image_size
    weights = _read_weights(arch, size, classifier)
    for name, value in flags.stated:
        if name.startswith("classifier_") != classifier:
            continue
        key = name.removeprefix("classifier_")
        key = {"width": "num_channels", "depth": "num_res_blocks"}.get(key, key)
        expected = _stated_value(key, value, size, len(arch.channel_mult))
        if expected is None or key not in weights:
            continue  # the pool: attention, refused otherwise when the flags were read
        if expected != weights[key]:
            cli = BY_NAME[name].cli
            wrong.append(f"{cli} {_show(value)}: the weights say {_say(key, weights[key])}")
    if wrong:
        raise InputError("the flags do not fit the weights: " + "; ".join(wrong))


def unchecked(flags: OpenAIFlags, classifier: bool) -> str | None:
    """A note naming the flags of the other kind of network, which are not checked: a model's
    flags given with a classifier (classifier_sample.py takes both lines), or the reverse."""
    other = [BY_NAME[n].cli for n, _ in flags.stated if n.startswith("classifier_") != classifier]
    if not other:
        return None
    kind = "a model's" if classifier else "a classifier's"
    return f"not checked, as {kind} flags and this checkpoint is not one: {', '.join(other)}"


def _read_weights(arch: Architecture, size: int | None, classifier: bool) -> dict[str, Any]:
    read: dict[str, Any] = {
        "num_channels": arch.model_channels,
        "num_res_blocks": arch.num_res_blocks,
        "channel_mult": tuple(arch.channel_mult),
        "use_scale_shift_norm": arch.use_scale_shift_norm,
        "resblock_updown": arch.resblock_updown,
    }
    if size is not None:
        read["attention_resolutions"] = frozenset(
            size // 2**level for level in arch.attention_levels
        )
    if not classifier:
        read["class_cond"] = arch.num_classes is not None
        read["learn_sigma"] = arch.learn_sigma
    return read


def _stated_value(key: str, value: Any, size: int | None, levels: int) -> Any:
    """The stated value in the terms _read_weights uses (None: cannot be checked here)."""
    if key == "channel_mult":
        if value == ():
            return _DEFAULT_MULT.get(size) if size is not None else None
        return tuple(value)
    if key == "attention_resolutions":
        if size is None:
            return None
        # their models attend where the downsampling rate size // r is reached by a level
        rates = {2**level for level in range(levels)}
        return frozenset(size // (size // int(r)) for r in value if size // int(r) in rates)
    return value


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value) or '""'
    return str(value)


def _say(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if key == "attention_resolutions":
        return ",".join(str(r) for r in sorted(value, reverse=True)) or "none"
    if key == "channel_mult":
        return _show(value)
    return str(value)


def check_image_size(size: int | None, levels: int) -> None:
    """The image size a network of `levels` levels can take: a multiple of 2^(levels - 1),
    within the studio's resolution (named by its flag, not by the folder it is written to)."""
    if size is None:
        raise InputError("the image size is not in the weights: give --image-size (or --preset)")
    factor = 2 ** (levels - 1)
    if not 1 <= size <= MAX_RESOLUTION or size % factor:
        raise InputError(
            f"--image-size {size} does not fit the weights: their network halves the image "
            f"{levels - 1} times, so the size is a multiple of {factor} up to {MAX_RESOLUTION}"
        )


def check_heads(flags: OpenAIFlags, widths: Iterable[int]) -> None:
    """The heads given divide every attention width of the network (--num-heads 7 into 256
    channels cannot be split)."""
    widths = sorted(set(widths))
    if flags.num_head_channels > 0:
        if any(w % flags.num_head_channels for w in widths):
            raise InputError(
                f"--num-head-channels {flags.num_head_channels} does not divide the attention "
                f"widths of the weights, {_list(widths)}"
            )
        return
    for flag, heads in (("--num-heads", flags.num_heads),
                        ("--num-heads-upsample", flags.num_heads_upsample)):  # fmt: skip
        if heads == -1 and flag == "--num-heads-upsample":
            continue
        if heads < 1 or any(w % heads for w in widths):
            raise InputError(
                f"{flag} {heads} does not divide the attention widths of the weights, "
                f"{_list(widths)}"
            )


def _list(numbers: Sequence[int]) -> str:
    return ", ".join(map(str, numbers))


def unet_config(arch: Architecture, flags: OpenAIFlags) -> dict[str, Any]:
    """The diffusers UNet2DModel config of the network (with the studio's two keys where
    UNet2DModel alone cannot say it)."""
    channels = arch.block_channels
    check_image_size(flags.image_size, len(channels))
    if any(c % 32 for c in channels):
        raise InputError(
            "the checkpoint's channels are not multiples of 32 (its GroupNorm's groups)"
        )
    attn, updown = arch.attention_levels, arch.resblock_updown
    plain_down, plain_up = ("ResnetDownsampleBlock2D", "ResnetUpsampleBlock2D") if updown else (
        "DownBlock2D", "UpBlock2D")  # fmt: skip
    levels = range(len(channels))
    config: dict[str, Any] = {
        "sample_size": flags.image_size,
        "in_channels": arch.in_channels,
        "out_channels": arch.out_channels,
        "block_out_channels": channels,
        "layers_per_block": arch.num_res_blocks,
        "down_block_types": ["AttnDownBlock2D" if i in attn else plain_down for i in levels],
        "up_block_types": [
            "AttnUpBlock2D" if len(channels) - 1 - i in attn else plain_up for i in levels
        ],
        "downsample_type": "resnet" if updown else "conv",
        "upsample_type": "resnet" if updown else "conv",
        "resnet_time_scale_shift": "scale_shift" if arch.use_scale_shift_norm else "default",
        "norm_num_groups": 32,
        "attn_norm_num_groups": 32,  # the middle block's attention is normalised too
        "norm_eps": 1e-5,
        "act_fn": "silu",
        "flip_sin_to_cos": True,  # guided-diffusion's embedding is [cos, sin]
        "freq_shift": 0,
        "time_embedding_type": "positional",
        "time_embedding_dim": 4 * arch.model_channels,
        "num_class_embeds": arch.num_classes,
        "add_attention": True,
        "dropout": 0.0,
    }
    attending = [channels[i] for i in sorted(attn)] + [channels[-1]]  # and the middle block
    check_heads(flags, attending)
    if flags.num_head_channels > 0:
        config["attention_head_dim"] = flags.num_head_channels
    else:
        heads = flags.num_heads
        up_heads = heads if flags.num_heads_upsample == -1 else flags.num_heads_upsample
        if up_heads != heads:
            raise InputError("a num_heads_upsample other than num_heads is not supported")
        widths = {channels[i] // heads for i in attn} | {channels[-1] // heads}
        if len(widths) == 1:  # one head width: UNet2DModel says it alone
            config["attention_head_dim"] = widths.pop()
        else:
            config["attention_head_dim"] = channels[-1] // heads
            config["attention_heads"] = heads
    if arch.model_channels != channels[0]:  # ADM-512: channel_mult starts at 0.5
        config["timestep_channels"] = arch.model_channels
    if flags.timestep_scale is not None:  # improved-diffusion's rescale_timesteps
        config["timestep_scale"] = flags.timestep_scale
    return config


def classifier_config(arch: Architecture, flags: OpenAIFlags) -> dict[str, Any]:
    """The NoiseClassifier config of the network: the UNet2DModel config's encoder keys, the
    classes and the pool's head width."""
    if flags.num_head_channels <= 0:
        raise InputError(
            "a classifier's attention pooling needs its head width: give --num-head-channels "
            "(ADM's classifiers use 64) or a classifier preset"
        )
    unet = unet_config(replace(arch, out_channels=arch.in_channels), flags)
    if "attention_heads" in unet:
        raise InputError("a classifier with a fixed count of heads per level is not supported")
    keys = set(inspect.signature(NoiseClassifier.__init__).parameters) - {"self"}
    config = {k: v for k, v in unet.items() if k in keys}
    return {**config, "num_classes": arch.out_channels, "pool_head_dim": flags.num_head_channels}


def scheduler_config(flags: OpenAIFlags, arch: Architecture) -> dict[str, Any]:
    """The diffusers scheduler config of the checkpoint's diffusion: T, the schedule, what the
    network predicts, the variance (learned_range for learn_sigma; else, as their scripts
    sample, beta unless sigma_small) and clipping."""
    linear = 1000 / flags.diffusion_steps if flags.noise_schedule == "linear" else 1.0
    return {
        "_class_name": "DDPMScheduler",
        "num_train_timesteps": flags.diffusion_steps,
        # guided-diffusion's linear schedule scales 1e-4..0.02 by 1000 / T (the cosine one has
        # none: diffusers' defaults, unused)
        "beta_start": 0.0001 * linear,
        "beta_end": 0.02 * linear,
        "beta_schedule": "squaredcos_cap_v2" if flags.noise_schedule == "cosine" else "linear",
        "variance_type": "learned_range"
        if arch.learn_sigma
        else ("fixed_small" if flags.sigma_small else "fixed_large"),
        "clip_sample": True,
        "prediction_type": "sample" if flags.predict_xstart else "epsilon",
        "timestep_spacing": "linspace",
    }
