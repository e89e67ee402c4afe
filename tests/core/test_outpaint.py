"""Outpainting that grows the picture: every pass keeps what existed exactly, the stitched
canvas has the size its growths say, MultiDiffusion averages its windows, and the record of
the passes makes the same canvas again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from diffusion_studio.core.canvas import Canvas, Growth, fit_picture, joined, parse_extend
from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.job import resolved
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.outpaint import (
    Growing,
    Outpaint,
    outpaint,
    read_outpaint,
    save_outpainting,
)
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import execute
from diffusion_studio.core.sampling import tiled

REQUEST = SampleRequest("ddim", 4, seed=3, class_label=0, guidance_scale=2.0, jump_n_sample=1)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def picture(model) -> np.ndarray:
    height, width = model.info.resolution
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def right(amount: float = 0.5) -> Growth:
    return Growth("extend", amount, "right")


@pytest.mark.parametrize("method", ["passes", "multidiffusion"])
def test_every_pass_keeps_what_existed_exactly(model, picture, method) -> None:
    size = model.info.resolution
    growths = (right(), right(), Growth("extend", 0.5, "top"), Growth("extend", 0.25, "left"))
    job = Outpaint(REQUEST, model.info, picture, joined(growths), method)
    growing = Growing(job)
    while (pass_job := growing.next_job()) is not None:
        before, made_by = growing.canvas, growing.made_by
        result = execute(model, pass_job)
        growing.take(result)
        kept = before.known
        assert np.array_equal(growing.canvas.image[kept], before.image[kept])
        assert np.array_equal(growing.made_by[kept], made_by[kept])
    done = growing.result()
    height, width = size
    grown = (height + height // 2, width + 2 * (width // 2) + width // 4)
    assert done.image.shape[:2] == job.size == grown
    top, left = height // 2, width // 4
    assert np.array_equal(done.image[top : top + height, left : left + width], picture)
    assert (done.made_by[top : top + height, left : left + width] == -1).all()
    assert (done.made_by >= -1).all()  # every pixel made by the picture or a pass
    # passes: one window for each side extension, then three across the top (the canvas is
    # twice the model's width: windows on a grid of a quarter of it, the most known first)
    # and two down the left; MultiDiffusion: consecutive extensions at once
    runs = 1 + 1 + 3 + 2 if method == "passes" else 1
    assert len(done.jobs) == runs
    assert [j.request.seed for j in done.jobs] == [REQUEST.seed + k for k in range(runs)]


def test_a_pass_conditions_on_its_overlap_with_the_canvas(model, picture) -> None:
    """The window of a half-size extension holds half the picture, known, and the new half."""
    growing = Growing(Outpaint(REQUEST, model.info, picture, (right(),), "passes"))
    job = growing.next_job()
    width = model.info.resolution[1]
    assert job.source.shape == picture.shape
    assert np.array_equal(job.source[:, : width // 2], picture[:, width // 2 :])
    assert not job.mask[:, : width // 2].any() and job.mask[:, width // 2 :].all()


def test_zoom_out_keeps_the_shrunk_picture_and_the_size(model, picture) -> None:
    job = Outpaint(REQUEST, model.info, picture, (Growth("zoom_out", 2.0),))
    done = outpaint(model, job)
    height, width = model.info.resolution
    assert done.image.shape == picture.shape
    shrunk = Canvas(picture, np.ones((height, width), bool)).grown(job.growths[0], (height, width))
    known = shrunk.known
    assert known.sum() == (height // 2) * (width // 2)
    assert np.array_equal(done.image[known], shrunk.image[known])


def test_multidiffusion_averages_the_windows_where_they_overlap() -> None:
    calls = []

    def model_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        calls.append(x.shape)
        return torch.full_like(x, float(len(calls)))

    fn = tiled(model_fn, [(0, 0), (0, 4)], (4, 8))
    out = fn(torch.zeros(1, 3, 4, 12), 5)
    assert calls == [(1, 3, 4, 8)] * 2
    assert (out[..., :4] == 1).all() and (out[..., 4:8] == 1.5).all() and (out[..., 8:] == 2).all()
    one = tiled(lambda x, t: x * 2, [(0, 0)], (4, 4))
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(one(x, 1), x * 2)


def test_the_record_makes_the_same_canvas_again(model, picture, tmp_path, tiny_uncond_dir) -> None:
    job = Outpaint(REQUEST, model.info, picture, (right(), Growth("zoom_out", 1.5)))
    done = outpaint(model, job)
    path = save_outpainting(done, tmp_path / "grown.png")
    again = read_outpaint(path, model.info)
    assert again.growths == job.growths and again.method == job.method
    ran = resolved(job.request, model.info)  # the spacing, variance and precision it ran in
    assert again.request == ran and np.array_equal(again.picture, picture)
    assert np.array_equal(outpaint(model, again).image, done.image)
    with pytest.raises(InputError, match="made with"):
        read_outpaint(path, load_model(tiny_uncond_dir).info)
    with pytest.raises(OutputExistsError):
        save_outpainting(done, path)


def test_an_outpainting_is_refused_before_it_runs(model, picture) -> None:
    cases = {
        "extend or a zoom-out": (),
        "at most 4": (right(5.0),),
        "more than 1": (Growth("zoom_out", 1.0),),
        "pixels a side": (Growth("extend", 4.0, "right"),) * 64,
    }
    for message, growths in cases.items():
        with pytest.raises(InputError, match=message):
            Growing(Outpaint(REQUEST, model.info, picture, growths))
    with pytest.raises(InputError, match="leave -n out"):
        Outpaint(
            dataclasses.replace(REQUEST, batch_size=2), model.info, picture, (right(),)
        ).check()
    for text in ("right", "up:0.5", "right:x", "right:nan", "right:0", "right:１"):
        with pytest.raises(InputError, match=r"SIDE:FRACTION|more than 0"):
            parse_extend(text)
    assert parse_extend(" Left:0.25") == Growth("extend", 0.25, "left")


def test_a_picture_is_fitted_whole_to_the_models_scale(model) -> None:
    height, width = model.info.resolution
    wide = np.zeros((height * 3, width * 6, 3), np.uint8)
    fitted, note = fit_picture(wide, model.info)
    assert fitted.shape == (height, width * 2, 3) and "resized" in note
    grown = np.zeros((height, width * 3, 3), np.uint8)  # a canvas grown before: as it is
    same, note = fit_picture(grown, model.info)
    assert same.shape == grown.shape and note is None


def test_a_pass_pastes_only_the_unknown_pixels() -> None:
    """What a pass's network makes of a known pixel (RePaint puts the source back; DDNM's
    projection within rounding) never reaches the canvas."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    known = np.ones((8, 12), bool)
    known[:, 9:] = False
    made = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pasted = Canvas(image, known).pasted((0, 4), made)
    assert np.array_equal(pasted.image[known], image[known])
    assert np.array_equal(pasted.image[:, 9:], made[:, 5:]) and pasted.known.all()


def test_joined_extensions_are_one_multidiffusion_run(model, picture) -> None:
    growths = (right(), right(), Growth("zoom_out", 2.0), right())
    assert [g.joined for g in joined(growths)] == [False, True, False, False]
    together = Outpaint(REQUEST, model.info, picture, joined(growths), "multidiffusion")
    assert [len(g) for g in together.groups()] == [2, 1, 1]
    apart = dataclasses.replace(together, growths=growths)
    assert [len(g) for g in apart.groups()] == [1, 1, 1, 1]
    passes = dataclasses.replace(together, method="passes")
    assert [len(g) for g in passes.groups()] == [1, 1, 1, 1]


def test_a_growth_added_as_it_goes_is_the_record_of_one_outpainting(model, picture) -> None:
    """The window grows a picture press by press; its record, run at once, makes the same."""
    growing = Growing(Outpaint(REQUEST, model.info, picture, (right(),), "multidiffusion"))
    for growth in (None, Growth("extend", 0.5, "bottom", joined=True)):
        if growth is not None:
            before = growing.copy()
            growing.add(growth)
        while (job := growing.next_job()) is not None:
            growing.take(execute(model, job))
    assert before.canvas.size != growing.canvas.size and len(before.jobs) == 1
    done = growing.result()
    assert not done.outpaint.growths[-1].joined  # a press is a run of its own
    assert np.array_equal(outpaint(model, done.outpaint).image, done.image)


def test_windows_must_lie_on_the_canvas_and_cover_what_it_generates() -> None:
    from diffusion_studio.core.canvas import check_windows

    generated = np.zeros((8, 12), bool)
    generated[:, 8:] = True
    check_windows(((0, 4),), (8, 12), (8, 8), generated)  # the known left part needs none
    with pytest.raises(InputError, match="uncovered"):
        check_windows(((0, 0),), (8, 12), (8, 8), generated)
    with pytest.raises(InputError, match="uncovered"):
        check_windows(((0, 4),), (8, 12), (8, 8))  # all generated: the left part too
    with pytest.raises(InputError, match="off the 12x8 canvas"):
        check_windows(((0, 5),), (8, 12), (8, 8), generated)
