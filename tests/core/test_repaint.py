"""RePaint: the official jump schedule, and known pixels that come back exactly."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import RePaintScheduler

from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.masks import MASK_PRESETS, mask_to_tensor, preset_mask
from diffusion_studio.core.moves import count_network_calls, jump_schedule, repaint_moves
from diffusion_studio.core.repaint import repaint
from diffusion_studio.core.sampling import ddim_update, ddpm_update, randn_like
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import make_unet


def test_paper_setting_makes_2410_network_calls() -> None:
    path = jump_schedule(250, jump_length=10, jump_n_sample=10)
    assert count_network_calls(path) == 2410  # 250 + 24 jumps x 9 resamples x 10 steps
    assert len(path) == 4571
    assert path[0] == 249 and path[-1] == -1
    assert all(abs(b - a) == 1 for a, b in pairwise(path))
    assert path[19:22] == [230, 231, 232]  # the first jump back, at 230


@pytest.mark.parametrize(
    ("steps", "length", "n"),
    [(250, 10, 10), (50, 10, 10), (20, 5, 3), (7, 10, 2), (10, 3, 1), (1, 1, 1)],
)
def test_jump_schedule_matches_diffusers_repaint_scheduler(steps: int, length: int, n: int) -> None:
    scheduler = RePaintScheduler()
    scheduler.set_timesteps(steps, jump_length=length, jump_n_sample=n)
    expected = (scheduler.timesteps.numpy() // (1000 // steps)).tolist()
    assert jump_schedule(steps, length, n) == [*expected, -1]


def test_no_resampling_is_a_plain_descent() -> None:
    assert jump_schedule(5, 10, 1) == [4, 3, 2, 1, 0, -1]


@pytest.fixture(scope="module")
def unet():
    return make_unet(size=16)


def run_repaint(unet, preset: str, sampler: str, seed: int = 0):
    schedule = NoiseSchedule.linear(1000)
    source_u8 = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    source = torch.from_numpy(source_u8).permute(2, 0, 1)[None].float() / 127.5 - 1
    mask = preset_mask(preset, (16, 16), seed=seed)
    g = [torch.Generator().manual_seed(seed + i) for i in range(2)]
    update = ddpm_update(schedule, g) if sampler == "ddpm" else ddim_update(schedule, g, 0.0)
    x_T = randn_like(torch.empty(2, 3, 16, 16), g)
    steps = list(
        repaint(
            lambda x, t: unet(x, t).sample,
            x_T,
            source,
            mask_to_tensor(mask),
            schedule,
            repaint_moves(schedule.timesteps(8, "trailing"), 3, 2),
            update,
            g,
        )
    )
    return source_u8, mask, steps


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("preset", MASK_PRESETS)
def test_known_pixels_of_the_result_are_the_source(unet, preset: str, sampler: str) -> None:
    source_u8, mask, steps = run_repaint(unet, preset, sampler)
    result = to_uint8(steps[-1].x_t)
    known = ~mask
    assert known.any() and mask.any()
    for image in result:
        assert np.array_equal(image[known], source_u8[known])
    # the generated region is the model's, not a copy of the source
    assert not np.array_equal(result[0][mask], source_u8[mask])
    assert not np.array_equal(result[0], result[1])  # each image its own noise


def test_repaint_steps_follow_the_jumps(unet) -> None:
    _, _, steps = run_repaint(unet, "half", "ddim")
    timesteps = NoiseSchedule.linear(1000).timesteps(8, "trailing")[::-1]
    path = jump_schedule(8, 3, 2)
    expected = [timesteps[a] for a, b in pairwise(path) if b < a]
    assert [s.timestep for s in steps] == expected
    assert [s.index for s in steps] == list(range(len(steps)))
    assert {s.total for s in steps} == {count_network_calls(path)}
    assert any(b.timestep > a.timestep for a, b in pairwise(steps))  # the jumps back


def test_an_all_known_mask_returns_the_source(unet) -> None:
    schedule = NoiseSchedule.linear(1000)
    source = torch.rand(1, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(0)
    steps = list(
        repaint(
            lambda x, t: unet(x, t).sample,
            randn_like(source, g),
            source,
            torch.zeros(1, 1, 16, 16),
            schedule,
            repaint_moves(schedule.timesteps(4), 2, 2),
            ddpm_update(schedule, g),
            g,
        )
    )
    assert torch.equal(steps[-1].x_t, source)
