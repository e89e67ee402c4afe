"""Whole runs of our DDPM and DDIM against diffusers 0.42's schedulers, on a deterministic model.

diffusers keeps its schedule tables in float32, whose rounding alone moves a 1000-step run by
~3e-5; to compare the algorithms, the float64 runs give diffusers our float64 tables. The float32
runs use diffusers' own tables, as shipped. Uneven sub-sequences (linspace, trailing, quadratic)
are checked against eq. 12 of the DDIM paper written out here, because DDIMScheduler.step assumes
even spacing there (diffusers issues 12633 and 11347).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusion_studio.core.moves import previous_timesteps
from diffusion_studio.core.sampling import ddim_update, ddpm_update, sample
from diffusion_studio.core.schedule import NoiseSchedule

SHAPE = (2, 3, 8, 8)


def dummy_model(x_t: torch.Tensor, t) -> torch.Tensor:
    """diffusers' scheduler-test model: a deterministic output that depends on x_t and t."""
    t = int(t)
    return x_t * t / (t + 1)


def use_float64_tables(scheduler, schedule: NoiseSchedule) -> None:
    scheduler.betas = torch.from_numpy(schedule.betas)
    scheduler.alphas = 1.0 - scheduler.betas
    scheduler.alphas_cumprod = torch.from_numpy(schedule.alphas_cumprod)
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)


def run_diffusers(scheduler, steps: int, dtype: torch.dtype, seed: int = 0, **step_kwargs):
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=generator, dtype=dtype)
    for t in scheduler.timesteps:
        x = scheduler.step(dummy_model(x, t), t, x, generator=generator, **step_kwargs).prev_sample
    return x


def run_ours(schedule: NoiseSchedule, timesteps: list[int], make_update, dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x_T = torch.randn(SHAPE, generator=generator, dtype=dtype)
    steps = list(sample(dummy_model, x_T, timesteps, make_update(generator)))
    assert [s.timestep for s in steps] == timesteps
    assert [s.index for s in steps] == list(range(len(timesteps)))
    return steps[-1].x_t


@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_matches_ddpm_scheduler(variance_type: str, clip_sample: bool, steps: int) -> None:
    scheduler = DDPMScheduler(variance_type=variance_type, clip_sample=clip_sample)
    schedule = NoiseSchedule.from_config(scheduler.config)
    use_float64_tables(scheduler, schedule)
    expected = run_diffusers(scheduler, steps, torch.float64)
    ours = run_ours(
        schedule,
        schedule.timesteps(steps, "leading"),
        lambda g: ddpm_update(schedule, g),
        torch.float64,
    )
    assert (ours - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("clipped_eps", [True, False])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("steps", [1000, 50, 10])
def test_ddim_matches_ddim_scheduler(
    eta: float, clip_sample: bool, steps: int, clipped_eps: bool
) -> None:
    scheduler = DDIMScheduler(clip_sample=clip_sample)
    schedule = NoiseSchedule.from_config(scheduler.config)
    use_float64_tables(scheduler, schedule)
    expected = run_diffusers(
        scheduler, steps, torch.float64, eta=eta, use_clipped_model_output=clipped_eps
    )
    ours = run_ours(
        schedule,
        schedule.timesteps(steps, "leading"),
        lambda g: ddim_update(schedule, g, eta, use_clipped_model_output=clipped_eps),
        torch.float64,
    )
    assert (ours - expected).abs().max().item() < 1e-5


def test_the_eps_choice_matters_when_x0_is_clipped() -> None:
    """With clipping active the two choices differ, so the parity above holds for each."""
    schedule = NoiseSchedule.from_config(DDIMScheduler(clip_sample=True).config)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def overshooting(x_t: torch.Tensor, t) -> torch.Tensor:  # an eps whose x0 leaves [-1, 1]
        return -2 * x_t

    runs = [
        list(sample(overshooting, x_T, schedule.timesteps(10), ddim_update(schedule, None, 0.0, c)))
        for c in (True, False)
    ]
    assert (runs[0][-1].x_t - runs[1][-1].x_t).abs().max().item() > 1e-3


@pytest.mark.parametrize("sampler", ["ddpm_small", "ddpm_large", "ddim_0", "ddim_0.5", "ddim_1"])
def test_float32_runs_match_diffusers_as_shipped(sampler: str) -> None:
    kind, option = sampler.split("_")
    if kind == "ddpm":
        scheduler = DDPMScheduler(variance_type=f"fixed_{option}")
        schedule = NoiseSchedule.from_config(scheduler.config)
        expected = run_diffusers(scheduler, 50, torch.float32)
        make_update = lambda g: ddpm_update(schedule, g)  # noqa: E731
    else:
        scheduler = DDIMScheduler()
        schedule = NoiseSchedule.from_config(scheduler.config)
        expected = run_diffusers(
            scheduler, 50, torch.float32, eta=float(option), use_clipped_model_output=True
        )
        make_update = lambda g: ddim_update(schedule, g, float(option))  # noqa: E731
    ours = run_ours(schedule, schedule.timesteps(50, "leading"), make_update, torch.float32)
    assert (ours - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize(("spacing", "steps"), [("linspace", 10), ("trailing", 7), ("trailing", 3)])
def test_respaced_ddpm_matches_ddpm_scheduler(spacing: str, steps: int) -> None:
    # DDPMScheduler looks the previous timestep up in its list (diffusers PR 9384), so it is
    # right for uneven spacings too.
    scheduler = DDPMScheduler(timestep_spacing=spacing)
    schedule = NoiseSchedule.from_config(scheduler.config)
    use_float64_tables(scheduler, schedule)
    expected = run_diffusers(scheduler, steps, torch.float64)
    ours = run_ours(
        schedule,
        schedule.timesteps(steps, spacing),
        lambda g: ddpm_update(schedule, g),
        torch.float64,
    )
    assert (ours - expected).abs().max().item() < 1e-5


def ddim_eq_12_reference(
    alphas_cumprod: np.ndarray, timesteps: list[int], eta: float, seed: int, clip: bool
) -> torch.Tensor:
    """DDIM eq. 12 with sigma of eq. 16, written out in float64 over an explicit timestep list."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    for t, t_prev in zip(timesteps, [*timesteps[1:], -1]):
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[t_prev] if t_prev >= 0 else 1.0
        eps = dummy_model(x, t)
        x0 = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
        sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t)) * np.sqrt(1 - a_t / a_prev)
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    return x


@pytest.mark.parametrize(
    ("spacing", "steps"), [("linspace", 10), ("trailing", 7), ("quadratic", 20), ("quadratic", 100)]
)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_on_uneven_subsequences_is_eq_12(
    spacing: str, steps: int, eta: float, clip: bool
) -> None:
    schedule = NoiseSchedule.from_config({"clip_sample": clip})
    timesteps = schedule.timesteps(steps, spacing)
    # DDIMScheduler.step would go to t - T // S: wrong for these sequences
    assert any(t - t_prev != 1000 // steps for t, t_prev in pairwise(timesteps))
    expected = ddim_eq_12_reference(schedule.alphas_cumprod, timesteps, eta, seed=3, clip=clip)
    ours = run_ours(
        schedule, timesteps, lambda g: ddim_update(schedule, g, eta), torch.float64, seed=3
    )
    assert (ours - expected).abs().max().item() < 1e-10


def test_per_image_generators_match_diffusers_generator_lists() -> None:
    scheduler = DDPMScheduler()
    schedule = NoiseSchedule.from_config(scheduler.config)
    use_float64_tables(scheduler, schedule)
    scheduler.set_timesteps(20)
    theirs = [torch.Generator().manual_seed(7 + i) for i in range(SHAPE[0])]
    from diffusers.utils.torch_utils import randn_tensor

    x = randn_tensor(SHAPE, generator=theirs, dtype=torch.float64)
    for t in scheduler.timesteps:
        x = scheduler.step(dummy_model(x, t), t, x, generator=theirs).prev_sample
    ours = [torch.Generator().manual_seed(7 + i) for i in range(SHAPE[0])]
    from diffusion_studio.core.sampling import randn_like

    x_T = randn_like(torch.empty(SHAPE, dtype=torch.float64), ours)
    result = list(sample(dummy_model, x_T, schedule.timesteps(20), ddpm_update(schedule, ours)))
    assert (result[-1].x_t - x).abs().max().item() < 1e-10


def test_previous_timesteps_end_at_the_clean_image() -> None:
    assert previous_timesteps([999, 500, 3]) == [500, 3, -1]


def learned_dummy(x_t: torch.Tensor, t) -> torch.Tensor:
    """A deterministic output of 2C channels: an eps, and a variance value v in [-1, 1]."""
    t = int(t)
    return torch.cat([x_t * t / (t + 1), torch.tanh(x_t) * 0.8], dim=1)


@pytest.mark.parametrize("steps", [1000, 50])
def test_learned_range_matches_ddpm_scheduler(steps: int) -> None:
    """IDDPM's learned variance (eq. 15) over a whole run, respaced too."""
    scheduler = DDPMScheduler(variance_type="learned_range")
    schedule = NoiseSchedule.from_config(scheduler.config)
    assert schedule.learns_variance
    use_float64_tables(scheduler, schedule)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    for t in scheduler.timesteps:
        x = scheduler.step(learned_dummy(x, t), t, x, generator=generator).prev_sample
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    timesteps = schedule.timesteps(steps, "leading")
    ours = list(sample(learned_dummy, x_T, timesteps, ddpm_update(schedule, generator)))[-1]
    assert (ours.x_t - x).abs().max().item() < 1e-5
    fixed = list(
        sample(
            learned_dummy,
            x_T,
            timesteps,
            ddpm_update(schedule, torch.Generator().manual_seed(0), "fixed_small"),
        )
    )[-1]
    assert (fixed.x_t - x).abs().max().item() > 1e-3  # the learned half is used, not ignored
