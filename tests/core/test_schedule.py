"""Noise schedules, the forward process and timestep sub-sequences, against diffusers."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.schedule import NoiseSchedule


@pytest.mark.parametrize(
    ("beta_schedule", "beta_end"),
    [("linear", 0.02), ("scaled_linear", 0.012), ("squaredcos_cap_v2", 0.02)],
)
def test_alphas_cumprod_match_diffusers(beta_schedule: str, beta_end: float) -> None:
    config = {
        "beta_schedule": beta_schedule,
        "beta_start": 0.00085 if beta_end == 0.012 else 1e-4,
        "beta_end": beta_end,
    }
    ours = NoiseSchedule.from_config(config)
    theirs = DDPMScheduler(**config).alphas_cumprod.double().numpy()
    np.testing.assert_allclose(ours.alphas_cumprod, theirs, rtol=2e-6, atol=1e-12)


def test_linear_schedule_reference_values() -> None:
    schedule = NoiseSchedule.linear()
    assert schedule.num_train_timesteps == 1000
    assert schedule.alpha_bar(0) == pytest.approx(0.9999)
    assert schedule.alpha_bar(999) == pytest.approx(4.04e-5, rel=0.01)
    assert schedule.alpha_bar(-1) == 1.0


def test_cosine_caps_the_last_beta() -> None:
    schedule = NoiseSchedule.from_config({"beta_schedule": "squaredcos_cap_v2"})
    assert schedule.betas[-1] == pytest.approx(0.999)
    assert schedule.betas[0] == pytest.approx(4.1e-5, rel=0.05)
    assert np.all(np.diff(schedule.alphas_cumprod) < 0)


def test_config_round_trip_and_trained_betas() -> None:
    betas = np.linspace(1e-3, 0.05, 50)
    schedule = NoiseSchedule.from_config(
        {
            "trained_betas": betas.tolist(),
            "prediction_type": "v_prediction",
            "variance_type": "fixed_large_log",
            "clip_sample": False,
        }
    )
    again = NoiseSchedule.from_config(schedule.to_config())
    np.testing.assert_array_equal(again.betas, betas)
    assert again.num_train_timesteps == 50
    assert again.prediction_type == "v_prediction"
    assert again.variance_type == "fixed_large"
    assert again.clip_sample is False


@pytest.mark.parametrize(
    "config",
    [
        {"beta_schedule": "sigmoid"},
        {"prediction_type": "noise"},
        {"variance_type": "learned_range_log"},
        {"trained_betas": [0.5, 1.5]},
    ],
)
def test_unsupported_configs_say_so(config: dict) -> None:
    with pytest.raises(InputError):
        NoiseSchedule.from_config(config)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 3, 7, 10, 50, 999, 1000])
def test_timesteps_match_diffusers(spacing: str, steps: int) -> None:
    scheduler = DDPMScheduler(timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    schedule = NoiseSchedule.from_config(scheduler.config)
    assert schedule.timesteps(steps, spacing) == scheduler.timesteps.tolist()


def test_steps_offset_applies_to_leading_only() -> None:
    scheduler = DDIMScheduler(steps_offset=1)
    scheduler.set_timesteps(10)
    schedule = NoiseSchedule.from_config(scheduler.config)
    assert schedule.timesteps(10, "leading") == scheduler.timesteps.tolist()
    assert schedule.timesteps(10, "leading")[0] == 901
    assert schedule.timesteps(10, "trailing")[0] == 999


@pytest.mark.parametrize("steps", [2, 10, 50, 100, 1000])
def test_quadratic_spacing_is_distinct_and_spans_the_chain(steps: int) -> None:
    timesteps = NoiseSchedule.linear().timesteps(steps, "quadratic")
    assert len(timesteps) == len(set(timesteps)) == steps
    assert timesteps[0] == 999 and timesteps[-1] == 0
    assert all(a > b for a, b in pairwise(timesteps))
    if steps == 10:  # floor(c i^2), c = 999 / 81: dense near the clean end
        assert timesteps[::-1] == [int(999 / 81 * i * i) for i in range(10)]


def test_too_many_steps_is_refused() -> None:
    with pytest.raises(InputError, match="between 1 and 1000"):
        NoiseSchedule.linear().timesteps(1001)
    with pytest.raises(InputError, match="between 1 and 1000"):
        NoiseSchedule.linear().timesteps(0)


def test_q_sample_matches_diffusers_add_noise() -> None:
    scheduler = DDPMScheduler()
    schedule = NoiseSchedule.from_config(scheduler.config)
    x_0, noise = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    expected = scheduler.add_noise(x_0, noise, t)
    torch.testing.assert_close(schedule.q_sample(x_0, t, noise), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        schedule.q_sample(x_0, 500, noise)[2], expected[2], atol=1e-5, rtol=1e-5
    )


def test_posterior_of_one_step_is_ddpm_eq_7() -> None:
    schedule = NoiseSchedule.linear()
    x_0, x_t = (
        torch.randn(1, 3, 4, 4, dtype=torch.float64),
        torch.randn(1, 3, 4, 4, dtype=torch.float64),
    )
    t = 300
    beta, ab_t, ab_prev = (
        schedule.betas[t],
        schedule.alphas_cumprod[t],
        schedule.alphas_cumprod[t - 1],
    )
    mean, variance = schedule.posterior(x_0, x_t, t, t - 1)
    expected = (ab_prev**0.5 * beta / (1 - ab_t)) * x_0 + (
        (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab_t)
    ) * x_t
    torch.testing.assert_close(mean, expected)
    assert variance == pytest.approx((1 - ab_prev) / (1 - ab_t) * beta)
    # the last step lands on the predicted x_0 with no variance left
    mean, variance = schedule.posterior(x_0, x_t, 0, -1)
    torch.testing.assert_close(mean, x_0)
    assert variance == pytest.approx(0.0, abs=1e-19)


def test_trailing_and_quadratic_give_exactly_s_steps_from_t_minus_1_for_every_s() -> None:
    from fractions import Fraction

    schedule = NoiseSchedule.linear(1000)
    for S in range(1, 1001):
        trailing = schedule.timesteps(S, "trailing")
        # round(T k / S) - 1 for k = S..1, exact rationals, halves to even (Python's round)
        assert trailing == [round(Fraction(1000 * k, S)) - 1 for k in range(S, 0, -1)], S
        quadratic = schedule.timesteps(S, "quadratic")
        assert len(quadratic) == len(set(quadratic)) == S and quadratic[0] == 999, S
        assert quadratic == sorted(quadratic, reverse=True) and quadratic[-1] >= 0, S


def test_trailing_matches_diffusers_wherever_its_float_arange_is_right() -> None:
    from diffusers import DDIMScheduler

    ours, theirs = NoiseSchedule.linear(1000), DDIMScheduler(timestep_spacing="trailing")
    too_many = 0
    for S in (1, 2, 3, 7, 10, 20, 25, 50, 61, 100, 250, 333, 999, 1000):
        theirs.set_timesteps(S)
        expected = theirs.timesteps.tolist()
        if len(expected) != S:  # S = 61: diffusers makes 62 steps
            too_many += 1
            continue
        assert ours.timesteps(S, "trailing") == expected, S
    assert too_many == 1
