"""DPM-Solver++(2M) against diffusers 0.42's DPMSolverMultistepScheduler ("dpmsolver++",
order 2, midpoint, the last step to sigma 0) on the same timesteps and (float64) tables,
whole runs, for every prediction type and spacing; and what it does beside the other
samplers: deterministic, first order after RePaint's jumps back, classifier guidance on its
noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from diffusion_studio.core.sampling import NO_STATE, ddim_update, dpmpp_2m_update, sample, walk
from diffusion_studio.core.schedule import NoiseSchedule

SHAPE = (2, 3, 8, 8)


def model(x_t: torch.Tensor, t) -> torch.Tensor:
    """A deterministic output that depends on x_t and t (diffusers' scheduler tests' model)."""
    t = int(t)
    return x_t * t / (t + 1)


def diffusers_run(schedule: NoiseSchedule, timesteps: list[int], x_T: torch.Tensor):
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=schedule.num_train_timesteps,
        trained_betas=schedule.betas.tolist(),
        prediction_type=schedule.prediction_type,
        algorithm_type="dpmsolver++",
        solver_order=2,
    )
    # diffusers' float32 tables alone move a run by ~4e-5: ours, in float64, compare the method
    scheduler.alphas_cumprod = torch.from_numpy(schedule.alphas_cumprod)
    scheduler.set_timesteps(timesteps=timesteps)
    assert scheduler.timesteps.tolist() == timesteps
    x = x_T.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x).prev_sample
    return x


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace", "quadratic"])
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_dpmpp_2m_matches_diffusers(prediction_type: str, spacing: str, steps: int) -> None:
    schedule = dataclasses.replace(NoiseSchedule.linear(), prediction_type=prediction_type,
                                   clip_sample=False)  # fmt: skip
    timesteps = schedule.timesteps(steps, spacing)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(steps))
    ours = list(sample(model, x_T, timesteps, dpmpp_2m_update(schedule, torch.Generator())))
    theirs = diffusers_run(schedule, timesteps, x_T)
    assert [s.timestep for s in ours] == timesteps
    assert torch.allclose(ours[-1].x_t, theirs.float(), atol=1e-5, rtol=1e-5), (
        (ours[-1].x_t - theirs).abs().max()
    )


def test_the_first_step_is_ddim_and_the_second_is_not() -> None:
    schedule = dataclasses.replace(NoiseSchedule.linear(), clip_sample=False)
    timesteps = schedule.timesteps(10, "trailing")
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    dpm = list(sample(model, x_T, timesteps, dpmpp_2m_update(schedule, torch.Generator())))
    ddim = list(sample(model, x_T, timesteps, ddim_update(schedule, torch.Generator(), 0.0)))
    assert torch.allclose(dpm[0].x_t, ddim[0].x_t, atol=1e-6)
    assert not torch.allclose(dpm[1].x_t, ddim[1].x_t, atol=1e-4)


def test_a_jump_back_up_starts_the_history_again() -> None:
    """After RePaint's re-noising the step before belongs to another x: first order again."""
    schedule = dataclasses.replace(NoiseSchedule.linear(), clip_sample=False)
    seen = []
    update = dpmpp_2m_update(schedule, torch.Generator())

    def watching(model_output, x_t, t, t_prev, state=NO_STATE):
        seen.append(state.x0 is not None)
        return update(model_output, x_t, t, t_prev, state)

    moves = [(900, 700), (700, 500), (500, 700), (700, 500), (500, 300), (300, -1)]
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    list(walk(model, x, moves, watching, renoise=lambda x, t, up: x))
    assert seen == [False, True, False, True, True]


def test_it_is_deterministic_and_classifier_guidance_moves_it() -> None:
    schedule = NoiseSchedule.linear()
    timesteps = schedule.timesteps(8, "trailing")
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    runs = [
        list(sample(model, x_T, timesteps, dpmpp_2m_update(schedule, torch.Generator())))[-1]
        for _ in range(2)
    ]
    assert torch.equal(runs[0].x_t, runs[1].x_t)
    pushed = dpmpp_2m_update(schedule, torch.Generator(),
                             classifier_grad=lambda x, t: torch.ones_like(x))  # fmt: skip
    guided = list(sample(model, x_T, timesteps, pushed))[-1].x_t
    assert float((guided - runs[0].x_t).mean()) > 0.01  # towards the gradient
    assert np.isfinite(guided.numpy()).all()


def test_a_job_of_dpm_solver_runs_plain_inpainting_and_forked(tiny_model_dir) -> None:
    """Through the whole engine: sampling, RePaint (its jumps back reset the history) and a
    fork, which takes the solver's history with it and so ends on its parent's image."""
    from diffusion_studio.core.job import Job
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.request import SampleRequest
    from diffusion_studio.core.run import execute

    model = load_model(tiny_model_dir)
    request = SampleRequest("dpmpp_2m", 6, seed=4, class_label=0, guidance_scale=2.0)
    parent = execute(model, Job.prepare(request, model.info))
    again = execute(model, Job.prepare(request, model.info))
    assert np.array_equal(parent.images, again.images)
    frame = parent.trajectory.frames[2]
    assert (
        frame.start is not None
        and frame.start.state.x0 is not None
        and frame.start.state.t is not None
    )  # x_0 before, its t
    rest = dataclasses.replace(request, num_inference_steps=3)  # the steps left after 3
    fork = execute(model, parent.job.forked(rest, 3), at=frame.start)
    assert np.array_equal(fork.images, parent.images)
    replayed = execute(model, parent.job.forked(rest, 3))  # from x_T, without the kept state
    assert np.array_equal(replayed.images, parent.images)
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)
    repaint = dataclasses.replace(request, jump_length=2, jump_n_sample=2)
    job = Job.prepare(repaint, model.info, image=image, mask_preset="half")
    result = execute(model, job)
    assert np.array_equal(result.images[0][~job.mask], image[~job.mask])
