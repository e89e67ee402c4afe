"""The noise-aware classifier of classifier guidance (Dhariwal & Nichol 2021): p_phi(y | x_t, t),
trained on noisy images with the timestep as an input, whose gradient steers a sampler.

NoiseClassifier is the encoder half of a UNet2DModel, built from diffusers' own blocks with
the same config keys (so one set of rules reads both), and ADM's attention pooling on top:
guided-diffusion's EncoderUNetModel with pool="attention". It is a diffusers ModelMixin, so a
classifier folder is config.json + safetensors like a model folder; the folder is read in
core/model_files.py, the one boundary for files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block
from torch import nn

from diffusion_studio.core.guidance import ClassifierGrad, classifier_gradient
from diffusion_studio.core.info import ClassifierInfo
from diffusion_studio.core.schedule import NoiseSchedule

CLASSIFIER_CLASS = "NoiseClassifier"


class AttentionPool(nn.Module):
    """ADM's attention pooling: the mean of the feature map, as one more token beside the
    pixels, attends to all of them (positions embedded, several heads); its output, projected,
    gives the logits."""

    def __init__(self, tokens: int, channels: int, head_dim: int, out_features: int):
        super().__init__()
        self.heads = channels // head_dim
        self.positional_embedding = nn.Parameter(torch.randn(tokens + 1, channels) / channels**0.5)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        tokens = x.reshape(b, c, -1).transpose(1, 2)  # (b, hw, c)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        q = q[:, :1]  # only the mean token's output is used

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], self.heads, c // self.heads).transpose(1, 2)

        pooled = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.proj(pooled.transpose(1, 2).reshape(b, c))


class NoiseClassifier(ModelMixin, ConfigMixin):
    """(x_t, t) -> logits over the classes: UNet2DModel's down path and middle block, a group
    norm, SiLU and attention pooling."""

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        in_channels: int = 3,
        num_classes: int = 10,
        block_out_channels: tuple[int, ...] = (64, 128, 128),
        layers_per_block: int = 1,
        down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        downsample_type: str = "conv",
        resnet_time_scale_shift: str = "default",
        attention_head_dim: int = 32,
        pool_head_dim: int = 32,
        norm_num_groups: int = 32,
        attn_norm_num_groups: int | None = None,
        norm_eps: float = 1e-5,
        act_fn: str = "silu",
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        timestep_channels: int | None = None,
        time_embedding_dim: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        width = timestep_channels or block_out_channels[0]
        embedding = time_embedding_dim or 4 * block_out_channels[0]
        self.time_proj = Timesteps(width, flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(width, embedding)
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList()
        channels = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers_per_block,
                    in_channels=channels,
                    out_channels=block_out_channels[i],
                    temb_channels=embedding,
                    add_downsample=i < len(block_out_channels) - 1,
                    resnet_eps=norm_eps,
                    resnet_act_fn=act_fn,
                    resnet_groups=norm_num_groups,
                    attention_head_dim=attention_head_dim,
                    downsample_padding=1,
                    resnet_time_scale_shift=resnet_time_scale_shift,
                    downsample_type=downsample_type,
                    dropout=dropout,
                )
            )
            channels = block_out_channels[i]
        self.mid_block = UNetMidBlock2D(
            in_channels=channels,
            temb_channels=embedding,
            dropout=dropout,
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_time_scale_shift=resnet_time_scale_shift,
            attention_head_dim=attention_head_dim,
            resnet_groups=norm_num_groups,
            attn_groups=attn_norm_num_groups,
        )
        self.norm_out = nn.GroupNorm(norm_num_groups, channels, eps=norm_eps)
        side = sample_size // 2 ** (len(block_out_channels) - 1)
        self.pool = AttentionPool(side * side, channels, pool_head_dim, num_classes)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> torch.Tensor:
        timesteps = torch.as_tensor(timestep, device=sample.device).reshape(-1)
        timesteps = timesteps.expand(sample.shape[0])
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        h = self.conv_in(sample)
        for block in self.down_blocks:
            h, _ = block(hidden_states=h, temb=emb)
        h = self.mid_block(h, emb)
        return self.pool(F.silu(self.norm_out(h)))


def small_classifier_config(resolution: int, channels: int, classes: int) -> dict[str, Any]:
    """The default model's classifier: 3 levels of 64/128/128 channels, attention at the two
    coarser ones, scale-shift norm and resblock downsampling as ADM's classifiers have."""
    return {
        "sample_size": resolution,
        "in_channels": channels,
        "num_classes": classes,
        "block_out_channels": [64, 128, 128],
        "layers_per_block": 1,
        "down_block_types": ["ResnetDownsampleBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
        "downsample_type": "resnet",
        "resnet_time_scale_shift": "scale_shift",
        "attention_head_dim": 32,
        "pool_head_dim": 32,
        "attn_norm_num_groups": 32,
    }


@dataclass(eq=False)
class Classifier:
    """A loaded noise-aware classifier: its network, the schedule its noise was drawn from, and
    its class names, on one device."""

    network: NoiseClassifier
    schedule: NoiseSchedule
    class_names: tuple[str, ...]
    name: str
    path: str = ""
    weights_hash: str = ""  # SHA-256 of the weights file

    @property
    def resolution(self) -> int:
        return int(self.network.config.sample_size)

    @property
    def in_channels(self) -> int:
        return int(self.network.config.in_channels)

    @property
    def info(self) -> ClassifierInfo:
        return ClassifierInfo(
            self.name,
            self.path,
            self.resolution,
            self.in_channels,
            self.class_names,
            self.weights_hash,
        )

    def mismatch(self, model: Any) -> str | None:
        """Why this classifier cannot guide `model` (a DiffusionModel), or None when it fits:
        the same image size and channels, the same noise (T and betas), and its classes."""
        info, size, name = model.info, self.resolution, self.name
        if info.resolution != (size, size):
            height, width = info.resolution
            return f"{name} classifies {size}x{size} images, {info.name} makes {width}x{height}"
        if info.in_channels != self.in_channels:
            return f"{name} takes {self.in_channels} channels, {info.name} {info.in_channels}"
        ours, theirs = self.schedule.alphas_cumprod, model.schedule.alphas_cumprod
        if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-4, atol=1e-7):
            return f"{self.name} was trained on another noise schedule than {info.name}'s"
        if info.class_names and info.class_names != self.class_names:
            return f"{self.name}'s classes are not {info.name}'s"
        return None

    def gradient(self, class_labels: torch.Tensor, scale: float) -> ClassifierGrad:
        """s grad log p(y | x_t, t) for the samplers (core.sampling.classifier_gradient)."""
        return classifier_gradient(self.network, class_labels, scale)

    def to(self, device: torch.device) -> Classifier:
        self.network.to(device)
        return self
