"""A whole job through `Job.prepare` and `run`: reproducible, validated, along its call plan."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.masks import preset_mask
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.moves import call_plan, network_calls
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def final(model, request, *inputs) -> torch.Tensor:
    image, mask = inputs or (None, None)
    job = Job.prepare(request, model.info, image=image, mask=mask)
    steps = list(run(model, job))
    plan = call_plan(job.request, model.schedule, job.inpaint)
    assert len(steps) == network_calls(request, jumps=bool(inputs)) == len(plan.calls)
    assert [s.timestep for s in steps] == plan.calls  # the plan is what the run does
    return steps[-1].x_t


def inpaint_inputs(model):
    source = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return source, preset_mask("wide", model.info.resolution, seed=3)


REQUESTS = {
    "ddpm": SampleRequest(sampler="ddpm", num_inference_steps=8, seed=5, batch_size=2),
    "ddim eta 0.5 guided": SampleRequest(
        sampler="ddim",
        num_inference_steps=8,
        eta=0.5,
        seed=5,
        batch_size=2,
        class_label=1,
        guidance_scale=3.0,
    ),
    "ddim quadratic": SampleRequest(num_inference_steps=8, timestep_spacing="quadratic", seed=5),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_same_request_same_seed_same_image_bit_for_bit(model, name) -> None:
    request = REQUESTS[name]
    first = final(model, request)
    torch.manual_seed(1234)  # global RNG state must not matter
    assert torch.equal(first, final(model, request))
    assert not torch.equal(first, final(model, dataclasses.replace(request, seed=6)))


def test_same_inpainting_request_same_image(model) -> None:
    request = SampleRequest(
        sampler="ddpm", num_inference_steps=6, jump_length=2, jump_n_sample=2, seed=1
    )
    inputs = inpaint_inputs(model)
    assert torch.equal(final(model, request, *inputs), final(model, request, *inputs))


def test_each_image_of_a_batch_can_be_made_alone(model) -> None:
    request = SampleRequest(sampler="ddpm", num_inference_steps=6, seed=20, batch_size=3)
    batch = final(model, request)
    alone = final(model, request.for_image(2))
    assert alone.shape[0] == 1
    torch.testing.assert_close(alone[0], batch[2], atol=1e-5, rtol=0)


def test_guidance_one_is_the_conditional_model(model) -> None:
    request = SampleRequest(num_inference_steps=5, class_label=2, guidance_scale=1.0, seed=4)
    conditional = final(model, request)
    guided = final(model, dataclasses.replace(request, guidance_scale=3.0))
    unconditional = final(model, dataclasses.replace(request, class_label=None))
    assert not torch.equal(conditional, guided)
    assert not torch.equal(conditional, unconditional)
    # scale 0 is the unconditional model: the null class, whatever class was asked for
    assert torch.equal(
        final(model, dataclasses.replace(request, guidance_scale=0.0)), unconditional
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_inference_steps": 101}, "between 1 and 100"),
        ({"eta": 1.01}, "eta must be between 0 and 1"),
        ({"eta": -0.5}, "eta must be between 0 and 1"),
        ({"sampler": "euler"}, "unknown sampler"),
        ({"timestep_spacing": "cosine"}, "unknown timestep spacing"),
        ({"batch_size": 0}, "batch size"),
        ({"seed": -1}, "seed"),
        ({"guidance_scale": -1.0}, "guidance"),
        ({"class_label": 7}, "out of range"),
        ({"jump_length": 0}, "the jump length must be from 1"),
    ],
)
def test_bad_requests_say_what_to_change(model, change, message) -> None:
    with pytest.raises(InputError, match=message):
        run(model, Job.prepare(dataclasses.replace(SampleRequest(), **change), model.info))


def test_inpainting_inputs_are_fitted_or_refused(model) -> None:
    source, mask = inpaint_inputs(model)
    with pytest.raises(InputError, match="both a source image and a mask"):
        Job.prepare(SampleRequest(), model.info, image=source)
    with pytest.raises(InputError, match="both a source image and a mask"):
        Job.prepare(SampleRequest(), model.info, mask=mask)
    with pytest.raises(InputError, match="the mask is 8x8, but the image is 16x16"):
        Job.prepare(SampleRequest(), model.info, image=source, mask=np.ones((8, 8), bool))
    big = np.zeros((32, 48, 3), np.uint8)  # centre-cropped to 32x32, resized to 16x16
    job = Job.prepare(SampleRequest(), model.info, image=big, mask=np.ones((32, 48), bool))
    assert job.source.shape == (16, 16, 3) and job.mask.shape == (16, 16)
    assert job.notes == ("48x32 image centre-cropped to 32x32 and resized to 16x16",)


def test_a_job_resolves_the_models_defaults(model) -> None:
    job = Job.prepare(SampleRequest(sampler="ddpm"), model.info)
    assert job.request.timestep_spacing == model.schedule.timestep_spacing == "leading"
    assert job.request.variance_type == model.schedule.variance_type


def test_request_round_trips_through_a_dict() -> None:
    request = SampleRequest(
        sampler="ddpm",
        num_inference_steps=20,
        variance_type="fixed_large",
        seed=3,
        class_label=None,
        guidance_scale=2,
    )
    assert SampleRequest.from_dict({**request.to_dict(), "unknown": 1}) == request
    with pytest.raises(InputError, match="should be a whole number"):
        SampleRequest.from_dict({"seed": "three"})


def test_the_trajectory_stays_within_its_budget_and_keeps_the_last_step() -> None:
    from diffusion_studio.core.result import Frame, Trajectory

    pixels = np.zeros((8, 16, 16, 3), np.uint8)
    frame_bytes = 2 * pixels.nbytes
    trajectory = Trajectory(budget_bytes=100 * frame_bytes)
    for i in range(10_000):
        trajectory.add(Frame(i, 10_000, 9_999 - i, pixels, pixels))
        assert trajectory.nbytes <= 100 * frame_bytes
    indices = [f.index for f in trajectory.frames]
    assert indices[0] == 0 and indices[-1] == 9_999 and len(indices) > 50
    assert len(set(np.diff(indices[:-1]))) == 1  # evenly thinned
