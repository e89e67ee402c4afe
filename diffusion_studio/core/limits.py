"""Limits checked before anything is allocated: a request or a model that would not fit is
refused at once, with the limit and what to change, not after minutes of work or an OOM.

The memory of a network call is estimated from the UNet's config: the activations of each
level (channels x pixels, about a dozen live tensors of that size at the peak: the skip
connections and a resnet's working set) plus the attention scores of the levels that attend
(pixels^2 per head). Measured on the CPU for the default model this overestimates by 10-30%
(2.3 MB per 32x32 image measured, 2.7 estimated; 39 MB against 47 at 128x128); a training
step needs about four times an inference call (10 MB per 32x32 image measured, 13 estimated).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

MAX_RESOLUTION = 2048
"""Largest side of a model's images (ADM's largest published model is 512)."""

MAX_PARAMETERS = 4_000_000_000
"""Largest network the studio builds (ADM-512 has 559 M parameters)."""

MAX_CLASSES = 100_000
"""Most classes a model or a training set may have (ImageNet has 1,000)."""

MAX_NETWORK_CALLS = 1_000_000
"""Most network calls one run may make (RePaint's paper setting, 250 steps, makes 2,410)."""

MAX_BATCH = 65_536
"""Most images in one request or one training batch."""

MAX_BATCHES = 10_000
"""Most batches one command makes one after the other (`--batches`)."""

MAX_TRAIN_TIMESTEPS = 100_000
"""Longest noise schedule (IDDPM's CIFAR-10 model uses 4,000)."""

MAX_TRAIN_RESOLUTION = 1024
"""Largest side a training run may fit its images to."""

MAX_TRAIN_STEPS = 100_000_000

TRAJECTORY_BUDGET_BYTES = 256 * 1024 * 1024
"""Most memory the recorded steps of one run take (then every second one is dropped)."""

START_BUDGET_BYTES = 64 * 1024 * 1024
"""Most memory the fork states of one run's steps take; a run that needs more keeps none, and a
fork replays its parent up to its step instead."""

LIVE_TENSORS_PER_LEVEL = 12  # activations of a level alive at the peak of a call, measured
TRAINING_FACTOR = 5  # a training step (forward kept for backward, gradients) over a call


def activation_bytes(unet_config: Mapping[str, Any], height: int, width: int) -> int:
    """Estimated peak bytes of one image through one call of a UNet2DModel (float32)."""
    channels = list(unet_config.get("block_out_channels") or [64])
    down = list(unet_config.get("down_block_types") or [])
    head_dim = unet_config.get("attention_head_dim")
    floats = 0
    for level, width_l in enumerate(channels):
        pixels = max(1, (height >> level) * (width >> level))
        floats += LIVE_TENSORS_PER_LEVEL * width_l * pixels
        last = level == len(channels) - 1
        attends = (level < len(down) and "Attn" in str(down[level])) or (
            last and unet_config.get("add_attention", True)
        )
        if attends:
            heads = max(1, width_l // head_dim) if isinstance(head_dim, int) and head_dim else 1
            floats += heads * pixels * pixels
    return 4 * floats


def memory_budget(device_type: str = "cpu", device_index: int | None = None) -> int:
    """Bytes a run may use on a device: free GPU memory, or the RAM available on this machine."""
    if device_type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device_index)
        return int(
            free
            + torch.cuda.memory_reserved(device_index)
            - torch.cuda.memory_allocated(device_index)
        )
    return available_ram()


def available_ram() -> int:
    """MemAvailable on Linux; half the physical memory elsewhere; 8 GiB if neither is known."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 8 * 1024**3


def format_bytes(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def repaint_calls(num_inference_steps: int, jump_length: int, jump_n_sample: int) -> int:
    """The network calls of RePaint's jump schedule, counted without building it: every jump
    point (multiples of jump_length below S - jump_length) adds (n - 1) x jump_length calls."""
    points = max(0, -(-(num_inference_steps - jump_length) // jump_length))
    return num_inference_steps + points * (jump_n_sample - 1) * jump_length
