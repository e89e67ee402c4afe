"""OpenAI's checkpoints into diffusers folders: the UNetModel state dicts of guided-diffusion
(Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", and RePaint's models, trained with it)
and improved-diffusion (Nichol & Dhariwal 2021, IDDPM).

The state dict's shapes say most of the architecture (channels and their multipliers, blocks per
level, where attention is, resblock up/down, scale-shift norm, the class count, a learned
variance); the rest (image size, heads, attention order, T and the schedule) comes from a preset
of a published checkpoint or from guided-diffusion's own flags. diffusers' UNet2DModel builds
the same network: scale-shift norm is resnet_time_scale_shift="scale_shift", resblock up/down
the Resnet*sample blocks, the heads a head width; two things it cannot say are kept as studio
keys of config.json (`attention_heads`: a fixed count of heads at every level, as ADM-128 and
IDDPM use; `timestep_channels`: a sinusoid wider than the first block, as ADM-512 uses) and
applied by apply_studio_options when the folder is loaded. Nothing is converted approximately:
every weight is mapped, shapes checked, and the written folder is loaded back and compared.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel

from diffusion_studio.core.classifier import NoiseClassifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import check_folder_target, replace_folder
from diffusion_studio.core.model import build_unet
from diffusion_studio.core.model_files import check_finite, load_classifier, load_model, save_model
from diffusion_studio.core.openai_flags import (
    Architecture,
    OpenAIFlags,
    check_heads,
    check_image_size,
    check_stated,
    describe,
    ignored,
    unchecked,
)
from diffusion_studio.core.schedule import NoiseSchedule


@dataclass
class _Keys:
    """The state dict being mapped: each key is taken once; what is left over is an error."""

    state: dict[str, torch.Tensor]
    taken: set[str] = field(default_factory=set)

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix + ".") for k in self.state)

    def take(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise InputError(f"the checkpoint lacks {key!r}, which its other weights imply")
        self.taken.add(key)
        return self.state[key]


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


@dataclass
class _Mapper:
    """Guided-diffusion's layers into diffusers' names: each source key is taken once, and what
    is left over at the end is an error."""

    keys: _Keys
    flags: OpenAIFlags
    out: dict[str, torch.Tensor] = field(default_factory=dict)

    def heads_of(self, c: int, upsampling: bool) -> int:
        flags = self.flags
        if flags.num_head_channels > 0:
            return c // flags.num_head_channels
        if upsampling and flags.num_heads_upsample != -1:
            return flags.num_heads_upsample
        return flags.num_heads

    def linear(self, src: str, dst: str) -> None:
        for part in ("weight", "bias"):
            tensor = self.keys.take(f"{src}.{part}")
            self.out[f"{dst}.{part}"] = tensor[..., 0] if tensor.ndim == 3 else tensor  # 1x1

    def resnet(self, src: str, dst: str) -> None:
        for a, b in (("in_layers.0", "norm1"), ("in_layers.2", "conv1"),
                     ("emb_layers.1", "time_emb_proj"), ("out_layers.0", "norm2"),
                     ("out_layers.3", "conv2")):  # fmt: skip
            self.linear(f"{src}.{a}", f"{dst}.{b}")
        if self.keys.has(f"{src}.skip_connection"):
            self.linear(f"{src}.skip_connection", f"{dst}.conv_shortcut")

    def attention(self, src: str, dst: str, c: int, upsampling: bool) -> None:
        heads = self.heads_of(c, upsampling)
        weight, bias = (
            self.keys.take(f"{src}.qkv.weight")[..., 0],
            self.keys.take(f"{src}.qkv.bias"),
        )
        if self.flags.use_new_attention_order:  # q, k, v each across all heads
            w, b = weight.reshape(3, c, c), bias.reshape(3, c)
        else:  # legacy: per head, its q, k and v
            w = weight.reshape(heads, 3, c // heads, c).transpose(0, 1).reshape(3, c, c)
            b = bias.reshape(heads, 3, c // heads).transpose(0, 1).reshape(3, c)
        for i, name in enumerate(("to_q", "to_k", "to_v")):
            self.out[f"{dst}.{name}.weight"], self.out[f"{dst}.{name}.bias"] = w[i], b[i]
        self.linear(f"{src}.norm", f"{dst}.group_norm")
        self.linear(f"{src}.proj_out", f"{dst}.to_out.0")

    def encoder(self, arch: Architecture) -> None:
        """The time embedding, the input blocks and the middle block, which the UNetModel and
        the EncoderUNetModel share."""
        channels, n = arch.block_channels, arch.num_res_blocks
        self.linear("time_embed.0", "time_embedding.linear_1")
        self.linear("time_embed.2", "time_embedding.linear_2")
        self.linear("input_blocks.0.0", "conv_in")
        for level in range(len(channels)):
            first = 1 + level * (n + 1)
            for k in range(n):
                self.resnet(f"input_blocks.{first + k}.0", f"down_blocks.{level}.resnets.{k}")
                if level in arch.attention_levels:
                    dst = f"down_blocks.{level}.attentions.{k}"
                    self.attention(f"input_blocks.{first + k}.1", dst, channels[level], False)
            if level < len(channels) - 1:
                down, dst = f"input_blocks.{first + n}.0", f"down_blocks.{level}.downsamplers.0"
                if arch.resblock_updown:
                    self.resnet(down, dst)
                else:
                    self.linear(f"{down}.op", f"{dst}.conv")
        self.resnet("middle_block.0", "mid_block.resnets.0")
        self.attention("middle_block.1", "mid_block.attentions.0", channels[-1], False)
        self.resnet("middle_block.2", "mid_block.resnets.1")

    def done(self) -> dict[str, torch.Tensor]:
        left = sorted(set(self.keys.state) - self.keys.taken)
        if left:
            raise InputError(
                f"the checkpoint has weights the inferred network does not: {', '.join(left[:3])}"
                + (f" and {len(left) - 3} more" if len(left) > 3 else "")
            )
        return self.out


def convert_state_dict(
    state: dict[str, torch.Tensor], arch: Architecture, flags: OpenAIFlags
) -> dict[str, torch.Tensor]:
    """The diffusers UNet2DModel weights of a UNetModel state dict (every key mapped once)."""
    m = _Mapper(_Keys(state), flags)
    channels, n = arch.block_channels, arch.num_res_blocks
    levels = len(channels)
    m.encoder(arch)
    if arch.num_classes is not None:
        m.out["class_embedding.weight"] = m.keys.take("label_emb.weight")
    for j in range(levels):
        level = levels - 1 - j
        for k in range(n + 1):
            block = j * (n + 1) + k
            m.resnet(f"output_blocks.{block}.0", f"up_blocks.{j}.resnets.{k}")
            last = 0
            if level in arch.attention_levels:
                m.attention(f"output_blocks.{block}.1", f"up_blocks.{j}.attentions.{k}",
                            channels[level], True)  # fmt: skip
                last = 1
            if level > 0 and k == n:
                up, dst = f"output_blocks.{block}.{last + 1}", f"up_blocks.{j}.upsamplers.0"
                if arch.resblock_updown:
                    m.resnet(up, dst)
                else:
                    m.linear(f"{up}.conv", f"{dst}.conv")
    m.linear("out.0", "conv_norm_out")
    m.linear("out.2", "conv_out")
    return m.done()


def convert_checkpoint(
    state: dict[str, torch.Tensor], flags: OpenAIFlags
) -> tuple[UNet2DModel, Architecture]:
    """The UNet2DModel of a UNetModel state dict, weights loaded (strict) and shapes checked."""
    arch = infer_architecture(state)
    check_stated(flags, arch, classifier=False)
    config = unet_config(arch, flags)
    weights = convert_state_dict(state, arch, flags)
    unet = build_unet(config)
    _load_checked(unet, weights)
    return unet.eval().requires_grad_(False), arch


def _load_checked(network: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load the mapped weights into a network built on the meta device, each key and shape
    checked first."""
    expected = network.state_dict()
    for key, tensor in weights.items():
        if key not in expected or tuple(expected[key].shape) != tuple(tensor.shape):
            found = tuple(expected[key].shape) if key in expected else "nothing"
            raise InputError(
                f"the mapped weight {key} is {tuple(tensor.shape)}, the network has {found}: "
                "the flags do not fit this checkpoint (check the preset, the heads, the order)"
            )
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise InputError(f"the checkpoint gives no weight for {missing[0]}")
    network.load_state_dict(weights, strict=True, assign=True)


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


def convert_classifier(
    state: dict[str, torch.Tensor], flags: OpenAIFlags
) -> tuple[NoiseClassifier, Architecture]:
    """The NoiseClassifier of an EncoderUNetModel state dict, weights loaded (strict)."""
    arch = infer_classifier_architecture(state, flags.image_size)
    check_stated(flags, arch, classifier=True)
    config = classifier_config(arch, flags)
    m = _Mapper(_Keys(state), flags)
    m.encoder(arch)
    m.linear("out.0", "norm_out")
    m.out["pool.positional_embedding"] = m.keys.take("out.2.positional_embedding").T
    m.linear("out.2.qkv_proj", "pool.qkv")
    m.linear("out.2.c_proj", "pool.proj")
    weights = m.done()
    with torch.device("meta"):
        network = NoiseClassifier.from_config(config)
    _load_checked(network, weights)
    return network.eval().requires_grad_(False), arch


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


def imagenet_class_names() -> tuple[str, ...] | None:
    """The 1,000 ImageNet categories from torchvision's weights metadata, when torchvision is
    installed (None otherwise: the classes are then numbered). Never from the network."""
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except Exception:  # not installed, or not importable beside this torch
        return None
    return tuple(str(name) for name in _IMAGENET_CATEGORIES)


def convert_to_folder(
    checkpoint: str | Path,
    out: str | Path,
    flags: OpenAIFlags,
    *,
    name: str | None = None,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Convert a checkpoint (a UNetModel, or an EncoderUNetModel classifier) into the diffusers
    folder `out` (flat layout, safetensors), and return it with notes for a person. The folder
    is written beside `out`, loaded back and its forward compared with the converted network;
    only then is it moved into place."""
    checkpoint, out = Path(checkpoint), Path(out)
    check_folder_target(out, overwrite=force)
    state = read_checkpoint(checkpoint)
    classifier = is_classifier(state)
    if classifier:
        network, arch = convert_classifier(state, flags)
        classes = arch.out_channels
        arch_of_noise = replace(arch, out_channels=arch.in_channels)  # no variance to learn
    else:
        network, arch = convert_checkpoint(state, flags)
        classes, arch_of_noise = arch.num_classes, arch
    schedule = NoiseSchedule.from_config(scheduler_config(flags, arch_of_noise))
    notes = [note for note in (ignored(flags), unchecked(flags, classifier)) if note]
    studio: dict[str, Any] = {
        "name": name or checkpoint.stem,
        "description": f"converted from {checkpoint.name}"
        + (f" ({flags.source})" if flags.source else ""),
        "converted_from": {"file": checkpoint.name, "flags": describe(flags)},
    }
    if classes:
        names = imagenet_class_names() if flags.class_names == "imagenet" else None
        if names is not None and len(names) == classes:
            studio["class_names"] = list(names)
        else:
            studio["class_names"] = [f"class {i}" for i in range(classes)]
            if flags.class_names == "imagenet":
                notes.append(
                    "the ImageNet class names come from torchvision's metadata, which is not "
                    f"installed: the classes are numbered 0 to {classes - 1}"
                )
    staging = out.with_name(f".{out.name}.converting-{secrets.token_hex(4)}")
    save_model(network, schedule, staging, studio=studio)
    try:
        _verify(staging, network, arch, classifier)
        replace_folder(staging, out, overwrite=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = f"{flags.image_size}x{flags.image_size}"
    noise = f"T = {flags.diffusion_steps}, {flags.noise_schedule} schedule"
    parameters = f"{sum(p.numel() for p in network.parameters()) / 1e6:.1f} M parameters"
    if classifier:
        notes.append(f"a noise-aware classifier: {parameters}, {size}, {classes} classes; {noise}")
    else:
        notes.append(
            f"{parameters}, {size}, learned variance: {arch.learn_sigma}, "
            f"classes: {arch.num_classes or 'none'}; {noise}"
        )
    return out, notes


def _verify(folder: Path, network: torch.nn.Module, arch: Architecture, classifier: bool) -> None:
    """The written folder's network gives the converted network's output (to float32's
    rounding: the same weights, laid out in memory otherwise, may sum in another order)."""
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([500])
    if classifier:
        written = load_classifier(folder, device="cpu").network
        side = int(written.config.sample_size)
        x = torch.randn(1, arch.in_channels, side, side, generator=g)
        with torch.no_grad():
            a, b = network(x, t), written(x, t)
    else:
        written = load_model(folder, device="cpu").unet
        size = 2 ** (len(arch.channel_mult) - 1)
        x = torch.randn(1, arch.in_channels, 2 * size, 2 * size, generator=g)
        labels = torch.tensor([0]) if arch.num_classes else None
        with torch.no_grad():
            a = network(x, t, class_labels=labels).sample
            b = written(x, t, class_labels=labels).sample
    if float((a - b).abs().max()) > 1e-5 * float(a.abs().max()):
        raise InputError(
            f"the written folder does not give the converted network's output (max difference "
            f"{float((a - b).abs().max()):.3g}); nothing was written"
        )
