"""RePaint inpainting, Lugmayr et al. 2022 (https://arxiv.org/abs/2201.09865), with DDPM or DDIM.

The mask convention is the project's: `inpaint_mask` 1 = generate, 0 = known (kept from the
source). The paper and its code use the opposite (1 = keep).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from diffusion_studio.core.sampling import (
    Generators,
    Merge,
    ModelFn,
    Move,
    Renoise,
    Step,
    Update,
    randn_like,
    walk,
)
from diffusion_studio.core.schedule import NoiseSchedule


def known_region(
    source: torch.Tensor,
    inpaint_mask: torch.Tensor,
    schedule: NoiseSchedule,
    generator: Generators,
) -> Merge:
    """RePaint's merge of the known region after each reverse step (Algorithm 1, line 5 with
    the square root of the official code, then line 8). The last level is the clean image, so
    the known pixels of the result are the source's, exactly.

    source (1 or N, C, H, W) in [-1, 1]; inpaint_mask (1 or N, 1, H, W), 1 = generate."""
    to_generate = inpaint_mask.bool()

    def merge(x: torch.Tensor, x0_pred: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        if t < 0:
            known = source
        else:
            alpha_bar = schedule.alpha_bar(t)
            known = alpha_bar**0.5 * source + (1 - alpha_bar) ** 0.5 * randn_like(x, generator)
        return torch.where(to_generate, x, known), torch.where(to_generate, x0_pred, source)

    return merge


def jump_back(schedule: NoiseSchedule, generator: Generators) -> Renoise:
    """A jump back up (RePaint's resampling, DDNM+'s time travel): x_{t_up} ~ q(x_{t_up} | x_t)
    of the respaced chain (RePaint's Algorithm 1, line 10)."""

    def renoise(x: torch.Tensor, t: int, t_up: int) -> torch.Tensor:
        ratio = schedule.alpha_bar(t_up) / schedule.alpha_bar(t)
        return ratio**0.5 * x + (1 - ratio) ** 0.5 * randn_like(x, generator)

    return renoise


def repaint(
    model_fn: ModelFn,
    x_T: torch.Tensor,
    source: torch.Tensor,
    inpaint_mask: torch.Tensor,
    schedule: NoiseSchedule,
    moves: Sequence[Move],
    update: Update,
    generator: Generators,
) -> Iterator[Step]:
    """RePaint, Algorithm 1 with resampling, over any sampler `update` (DDPM or DDIM), along
    `moves` (repaint_moves: the run's call plan): the one loop (sampling.walk) with the known
    region merged back after every reverse step and the jumps back re-noised."""
    merge = known_region(source, inpaint_mask, schedule, generator)
    return walk(model_fn, x_T, moves, update, merge=merge, renoise=jump_back(schedule, generator))
