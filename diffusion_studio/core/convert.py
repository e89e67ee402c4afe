"""OpenAI's checkpoints into diffusers folders: the UNetModel state dicts of guided-diffusion
(Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", and RePaint's models, trained with it)
and improved-diffusion (Nichol & Dhariwal 2021, IDDPM).

The state dict's shapes say most of the architecture (core/checkpoint_shapes.py: channels and
their multipliers, blocks per level, where attention is, resblock up/down, scale-shift norm, the
class count, a learned variance); the rest (image size, heads, attention order, T and the
schedule) comes from a preset of a published checkpoint or from guided-diffusion's own flags.
diffusers' UNet2DModel builds the same network: scale-shift norm is
resnet_time_scale_shift="scale_shift", resblock up/down the Resnet*sample blocks, the heads a
head width; two things it cannot say are kept as studio keys of config.json (`attention_heads`:
a fixed count of heads at every level, as ADM-128 and IDDPM use; `timestep_channels`: a sinusoid
wider than the first block, as ADM-512 uses) and applied by apply_studio_options when the folder
is loaded. Nothing is converted approximately: every weight is mapped, shapes checked, and the
written folder is loaded back and compared.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel

from diffusion_studio.core.checkpoint_shapes import (
    Architecture,
    infer_architecture,
    infer_classifier_architecture,
    is_classifier,
    read_checkpoint,
)
from diffusion_studio.core.classifier import NoiseClassifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import check_folder_target, replace_folder
from diffusion_studio.core.model import build_unet
from diffusion_studio.core.model_files import load_classifier, load_model, save_model
from diffusion_studio.core.openai_configs import (
    check_stated,
    classifier_config,
    scheduler_config,
    unchecked,
    unet_config,
)
from diffusion_studio.core.openai_flags import OpenAIFlags, describe, ignored
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
