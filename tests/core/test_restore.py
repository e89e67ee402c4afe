"""The course's other tasks: super-resolution on the grid keeps the small picture's pixels, by
DDNM keeps its block averages; colorization keeps the grey picture's luminance; DDNM's
inpainting keeps the known pixels; DDNM+'s time travel goes back up as RePaint does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from diffusion_studio.core.restore import average, luminance, masked, projection
from diffusion_studio.core.run import execute

REQUEST = SampleRequest("ddim", 8, seed=1, class_label=0, guidance_scale=2.0)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "degradation",
    [average(2), average(4), luminance(3), masked(torch.rand(1, 1, 16, 16) > 0.5)],
    ids=["average 2", "average 4", "luminance", "mask"],
)
def test_the_projection_keeps_the_observation_exactly(degradation) -> None:
    """A (A+ y + (I - A+ A) x) = A A+ y = y: the pseudo-inverse's one property DDNM needs."""
    g = torch.Generator().manual_seed(0)
    x, truth = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    y = degradation.apply(truth * 2 - 1)
    projected = projection(degradation, y)(x * 2 - 1)
    assert torch.allclose(degradation.apply(projected), y, atol=1e-6)
    assert not torch.allclose(projected, truth * 2 - 1)  # the null space is the network's


def test_grid_upscaling_keeps_the_small_picture_s_pixels(model, small) -> None:
    job = Job.upscale(REQUEST, model.info, small, 2, "grid")
    image = execute(model, job).images[0]
    assert np.array_equal(image[::2, ::2], small)
    assert job.inpaint and job.mask.mean() == 0.75


@pytest.mark.parametrize("factor", [2, 4])
def test_ddnm_upscaling_keeps_the_block_averages(model, factor) -> None:
    small = np.random.default_rng(factor).integers(0, 256, (16 // factor,) * 2 + (3,), np.uint8)
    image = execute(model, Job.upscale(REQUEST, model.info, small, factor, "ddnm")).images[0]
    blocks = image.astype(float).reshape(16 // factor, factor, 16 // factor, factor, 3)
    assert np.abs(blocks.mean(axis=(1, 3)) - small).max() <= 1.0  # within one level
    assert image.std() > 0 and not np.array_equal(image, small.repeat(factor, 0).repeat(factor, 1))


def test_a_tiled_enlargement_grows_past_the_model_and_keeps_the_averages(model, tmp_path):
    """Enlarge 2x of a picture of the model's size: a canvas twice the model's, denoised by
    MultiDiffusion's windows, its block averages the picture's; its record makes it again."""
    from diffusion_studio.core.record import read_record
    from diffusion_studio.core.write import plan_outputs, write

    picture = np.random.default_rng(5).integers(0, 256, (16, 24, 3), np.uint8)
    job = Job.upscale(REQUEST, model.info, picture, 2, "ddnm", tiled=True)
    assert job.shape == (32, 48) and len(job.windows) > 1
    result = execute(model, job)
    image = result.images[0]
    blocks = image.astype(float).reshape(16, 2, 24, 2, 3).mean(axis=(1, 3))
    assert image.shape == (32, 48, 3) and np.abs(blocks - picture).max() <= 1.0
    (path,) = write(plan_outputs(job, tmp_path, "big", inputs=False), [result])
    again = read_record(path).job(model.info)
    assert again.windows == job.windows
    assert np.array_equal(execute(model, again).images[0], image)
    with pytest.raises(InputError, match="ddnm only"):
        Job.upscale(REQUEST, model.info, picture, 2, "grid", tiled=True)


def test_a_colorized_picture_keeps_its_luminance(model) -> None:
    from PIL import Image

    picture = Image.open(sample_images()[0]).convert("L").resize((16, 16))
    job = Job.colorize(REQUEST, model.info, np.asarray(picture.convert("RGB")))
    image = execute(model, job).images[0]
    luma = image.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - np.asarray(picture, float)).max() <= 1.0
    assert np.abs(image[..., 0].astype(int) - image[..., 2]).max() > 5  # not grey


def test_ddnm_inpainting_keeps_the_known_pixels(model) -> None:
    source = sample_images()[1]
    job = Job.prepare(REQUEST, model.info, image=source, mask_preset="half", consistency="ddnm")
    assert not job.inpaint and job.jumps  # no RePaint merge: DDNM's projection keeps them
    image = execute(model, job).images[0]
    known = ~job.mask
    assert np.abs(image[known].astype(int) - job.source[known]).max() <= 1
    repaint = Job.prepare(REQUEST, model.info, image=source, mask_preset="half")
    assert not np.array_equal(execute(model, repaint).images[0], image)


def test_time_travel_goes_back_up_and_keeps_the_averages(model, small) -> None:
    travel = dataclasses.replace(REQUEST, jump_length=2, jump_n_sample=3)
    result = execute(model, Job.upscale(travel, model.info, small, 2, "ddnm"))
    assert len(result.calls) > travel.num_inference_steps  # it went back and down again
    blocks = result.images[0].astype(float).reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
    assert np.abs(blocks - small).max() <= 1.0


def test_what_cannot_be_restored_is_said(model, small) -> None:
    with pytest.raises(InputError, match="2 or 4"):
        Job.upscale(REQUEST, model.info, small, 3)
    with pytest.raises(InputError, match="grid or ddnm"):
        Job.upscale(REQUEST, model.info, small, 2, "bicubic")
    grey = dataclasses.replace(model.info, in_channels=1)
    with pytest.raises(InputError, match="RGB model"):
        Job.colorize(REQUEST, grey, small)


@pytest.mark.parametrize("kind", ["upscale ddnm", "colorize", "inpaint ddnm"])
def test_a_restoration_s_png_makes_it_again(model, small, tmp_path, kind) -> None:
    from diffusion_studio.core.record import read_record
    from diffusion_studio.core.write import plan_outputs, write

    if kind == "upscale ddnm":
        job = Job.upscale(REQUEST, model.info, small, 2)
    elif kind == "colorize":
        job = Job.colorize(REQUEST, model.info, sample_images()[0])
    else:
        job = Job.prepare(REQUEST, model.info, image=sample_images()[0], mask_preset="thin",
                          consistency="ddnm")  # fmt: skip
    result = execute(model, job)
    [path, *_] = write(plan_outputs(job, tmp_path, "r"), [result])
    record = read_record(path)
    assert record.restore is not None and record.restore.operator == job.restore.operator
    again = execute(model, record.job(model.info))
    assert np.array_equal(again.images, result.images)
