"""Helpers shared by the tests: tiny diffusers UNets, built on the CPU in milliseconds."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel

CLASS_NAMES = ["circle", "square", "triangle"]


def make_unet(
    size: int = 16, num_class_embeds: int | None = None, seed: int = 0, channels: int = 3
) -> UNet2DModel:
    """A randomly initialised UNet2DModel of about 30k parameters."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        num_class_embeds=num_class_embeds,
    ).eval()


# config.json values a hostile or broken model folder may hold, each refused with one message
BAD_CONFIG = {
    "sample_size text": {"sample_size": "abc"},
    "sample_size list": {"sample_size": [16, 16, 16]},
    "sample_size 100000": {"sample_size": 100000},
    "sample_size odd": {"sample_size": 15},
    "norm_num_groups 0": {"norm_num_groups": 0},
    "norm_num_groups 3": {"norm_num_groups": 3},
    "layers text": {"layers_per_block": "x"},
    "channels huge": {"block_out_channels": [100000, 100000]},
    "channels text": {"block_out_channels": ["a", 16]},
    "block types": {"down_block_types": ["Nope", "DownBlock2D"]},
    "two channels": {"in_channels": 2, "out_channels": 2},
    "learned variance": {"out_channels": 6},
    "head dim 0": {"attention_head_dim": 0},
    "class embeds -1": {"num_class_embeds": -1},
    "activation": {"act_fn": "nope"},
    "time embedding": {"time_embedding_type": "bad"},
}


def make_classifier(size: int = 16, classes: int = 3, seed: int = 0, channels: int = 3):
    """A randomly initialised NoiseClassifier of a few thousand parameters."""
    from diffusion_studio.core.classifier import NoiseClassifier

    torch.manual_seed(seed)
    return NoiseClassifier(
        sample_size=size,
        in_channels=channels,
        num_classes=classes,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        attention_head_dim=8,
        pool_head_dim=8,
        norm_num_groups=4,
    ).eval()
