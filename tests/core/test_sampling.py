"""What a person notices about sampling: the right image for a perfect model, seeds, guidance."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from diffusion_studio.core.guidance import classifier_free_guidance
from diffusion_studio.core.sampling import (
    ddim_update,
    ddpm_update,
    randn_like,
    sample,
)
from diffusion_studio.core.schedule import NoiseSchedule


def oracle(schedule: NoiseSchedule, x_0: torch.Tensor):
    """The exact network for data that is always x_0, in the schedule's prediction type."""

    def model_fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
        ab = schedule.alpha_bar(t)
        eps = (x_t - ab**0.5 * x_0) / (1 - ab) ** 0.5
        if schedule.prediction_type == "epsilon":
            return eps
        if schedule.prediction_type == "v_prediction":
            return ab**0.5 * eps - (1 - ab) ** 0.5 * x_0
        return x_0.expand_as(x_t)

    return model_fn


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("beta_schedule", ["linear", "squaredcos_cap_v2"])
def test_a_perfect_model_gives_its_image(prediction_type, sampler, beta_schedule) -> None:
    schedule = NoiseSchedule.from_config(
        {"prediction_type": prediction_type, "beta_schedule": beta_schedule, "clip_sample": False}
    )
    x_0 = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    generator = torch.Generator().manual_seed(0)
    update = (
        ddpm_update(schedule, generator)
        if sampler == "ddpm"
        else ddim_update(schedule, generator, 0.5)
    )
    x_T = randn_like(torch.empty(2, 3, 8, 8), generator)
    steps = list(sample(oracle(schedule, x_0), x_T, schedule.timesteps(25, "trailing"), update))
    torch.testing.assert_close(steps[-1].x_t, x_0.expand(2, -1, -1, -1), atol=1e-4, rtol=0)
    # (at t = 999 of the cosine schedule sqrt(alpha-bar) is 5e-5: float32 noise dominates there)
    torch.testing.assert_close(steps[5].x0_pred, x_0.expand(2, -1, -1, -1), atol=1e-3, rtol=0)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_v_prediction_matches_ddim_scheduler(eta: float) -> None:
    scheduler = DDIMScheduler(prediction_type="v_prediction", clip_sample=False)
    schedule = NoiseSchedule.from_config(scheduler.config)
    scheduler.set_timesteps(20)
    net = lambda x, t: torch.tanh(x) * (int(t) + 1) / 1000  # noqa: E731
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 8, 8, generator=g)
    for t in scheduler.timesteps:
        x = scheduler.step(net(x, t), t, x, eta=eta, generator=g).prev_sample
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(1, 3, 8, 8, generator=g)
    ours = list(sample(net, x_T, schedule.timesteps(20), ddim_update(schedule, g, eta)))[-1].x_t
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=0)


def test_clip_sample_bounds_the_predicted_image() -> None:
    schedule = NoiseSchedule.from_config({"clip_sample": True, "clip_sample_range": 0.5})
    g = torch.Generator().manual_seed(0)
    steps = sample(
        lambda x, t: -3 * x,
        torch.randn(1, 3, 8, 8, generator=g),
        schedule.timesteps(5),
        ddim_update(schedule, g, 0.0),
    )
    assert all(s.x0_pred.abs().max() <= 0.5 for s in steps)


def test_steps_are_reported_once_per_network_call() -> None:
    schedule = NoiseSchedule.linear(100)
    calls = []
    g = torch.Generator().manual_seed(0)
    steps = list(
        sample(
            lambda x, t: calls.append(t) or torch.zeros_like(x),
            torch.zeros(1, 1, 2, 2),
            schedule.timesteps(10),
            ddpm_update(schedule, g),
        )
    )
    assert [s.timestep for s in steps] == calls == schedule.timesteps(10)
    assert {s.total for s in steps} == {10}


def test_the_sampler_draws_noise_only_from_its_generator() -> None:
    schedule = NoiseSchedule.linear(100)

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed + 1000)  # the global RNG must not matter
        x_T = randn_like(torch.empty(1, 3, 4, 4), g)
        update = ddpm_update(schedule, g)
        return list(sample(lambda x, t: 0.1 * x, x_T, schedule.timesteps(10), update))[-1].x_t

    first = run(5)
    torch.manual_seed(123)
    assert torch.equal(first, run(5))
    assert not torch.equal(first, run(6))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "quadratic"])
def test_ddpm_with_beta_tilde_is_ddim_with_eta_one(spacing) -> None:
    """The DDIM paper's remark: eta = 1 is DDPM's posterior variance, on any sub-sequence."""
    schedule = NoiseSchedule.linear()
    timesteps = schedule.timesteps(20, spacing)

    def run(update_for) -> torch.Tensor:
        g = torch.Generator().manual_seed(7)
        x_T = randn_like(torch.empty(2, 3, 4, 4), g)
        net = lambda x, t: torch.tanh(x) * (t / 1000)  # noqa: E731
        return list(sample(net, x_T, timesteps, update_for(g)))[-1].x_t

    ddpm = run(lambda g: ddpm_update(schedule, g, variance_type="fixed_small"))
    ddim = run(lambda g: ddim_update(schedule, g, 1.0))
    torch.testing.assert_close(ddpm, ddim, rtol=0, atol=1e-5)


def conditional_net(x_t: torch.Tensor, t: int, labels: torch.Tensor) -> torch.Tensor:
    return x_t * (labels.view(-1, 1, 1, 1).float() + 1) / 10 + t / 1000


def test_guidance_scale_one_is_the_conditional_model_alone() -> None:
    labels = torch.tensor([0, 2])
    x = torch.randn(2, 3, 4, 4)
    guided = classifier_free_guidance(conditional_net, labels, null_class=3, guidance_scale=1.0)
    torch.testing.assert_close(guided(x, 7), conditional_net(x, 7, labels))


@pytest.mark.parametrize("scale", [0.0, 3.0, 7.5])
def test_guidance_is_uncond_plus_scale_times_difference(scale: float) -> None:
    labels = torch.tensor([0, 2])
    x = torch.randn(2, 3, 4, 4)
    calls = []

    def net(x_t, t, lab):
        calls.append(len(lab))
        return conditional_net(x_t, t, lab)

    guided = classifier_free_guidance(net, labels, null_class=3, guidance_scale=scale)
    cond = conditional_net(x, 7, labels)
    uncond = conditional_net(x, 7, torch.full_like(labels, 3))
    torch.testing.assert_close(guided(x, 7), uncond + scale * (cond - uncond))
    assert calls == ([2] if scale == 0.0 else [4])  # one batched forward
