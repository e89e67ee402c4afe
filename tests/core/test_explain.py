"""Help > What this run does: the chosen sampler's update rule, with the run's own numbers."""

from __future__ import annotations

from diffusion_studio.core.explain import explain
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.schedule import NoiseSchedule

SCHEDULE = NoiseSchedule.linear(1000)


def test_ddim_shows_eq_12_and_its_eta() -> None:
    text = explain(SampleRequest("ddim", 20, eta=0.0), SCHEDULE, "epsilon")
    assert "**DDIM**" in text and "eq. 12" in text
    assert "xₜ₋₁ = √ᾱₜ₋₁ x₀′ + √(1 − ᾱₜ₋₁ − σₜ²) ε_θ(xₜ, t) + σₜ z" in text
    assert "η = 0: no noise is drawn" in text
    noisy = explain(SampleRequest("ddim", 20, eta=0.35), SCHEDULE, "epsilon")
    assert "η = 0.35: σₜ = 0.35 · √((1 − ᾱₜ₋₁) / (1 − ᾱₜ))" in noisy
    assert "Algorithm 2" not in noisy


def test_ddpm_shows_algorithm_2_and_its_variance() -> None:
    text = explain(SampleRequest("ddpm", 1000, variance_type="fixed_large"), SCHEDULE, "epsilon")
    assert "**DDPM**" in text and "Algorithm 2" in text
    assert "σₜ² = βₜ" in text and "η" not in text


def test_the_timesteps_are_those_the_run_visits() -> None:
    request = SampleRequest("ddim", 10, timestep_spacing="trailing")
    visited = [int(t) for t in SCHEDULE.timesteps(10, "trailing")]
    text = explain(request, SCHEDULE, "epsilon")
    assert "takes 10 steps down the model's T = 1000 timesteps, trailing spacing" in text
    assert f"t = {visited[0]}, {visited[1]}, {visited[2]}, {visited[3]}, …" in text
    assert text.rstrip().count("\n") > 5


def test_guidance_and_inpainting_are_said_when_they_apply() -> None:
    request = SampleRequest("ddim", 50, class_label=1, guidance_scale=3.0, jump_n_sample=4)
    text = explain(request, SCHEDULE, "v_prediction", inpaint=True, class_name="Food", guided=True)
    assert "Classifier-free guidance" in text and "towards Food, w = 3" in text
    assert "**RePaint**" in text and "4 times in all" in text
    assert "v = √ᾱₜ ε − √(1 − ᾱₜ) x₀" in text
    plain = explain(SampleRequest("ddim", 50), SCHEDULE, "epsilon")
    assert "RePaint" not in plain and "guidance" not in plain.lower()
    guided = explain(
        SampleRequest("ddpm", 50, class_label=0, classifier_scale=2.0), SCHEDULE, "epsilon",
        class_name="Food",
    )  # fmt: skip
    assert "**Classifier guidance**" in guided and "s = 2" in guided
