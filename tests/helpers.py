"""Helpers shared by the tests: tiny diffusers UNets, built on the CPU in milliseconds."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel

CLASS_NAMES = ["circle", "square", "triangle"]


def make_unet(size: int = 16, num_class_embeds: int | None = None, seed: int = 0) -> UNet2DModel:
    """A randomly initialised UNet2DModel of about 30k parameters."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=size,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        num_class_embeds=num_class_embeds,
    ).eval()
