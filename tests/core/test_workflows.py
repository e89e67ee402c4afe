"""Compare and fork on the run layer: a run taken up from any state; a compare cell is the
plain run of its settings; a fork, unchanged, ends on its parent's image bit for bit, and its
PNG, read back, makes it again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from diffusion_studio.cli import main
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.job import Job
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.plan import build_plan
from diffusion_studio.core.record import read_record
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from diffusion_studio.core.run import execute
from diffusion_studio.core.workflows import Axis, compare, product, sweep
from diffusion_studio.core.write import plan_outputs, write


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


def image_of(model, job, **kwargs) -> np.ndarray:
    return execute(model, job, **kwargs).images


REQUESTS = {
    "ddpm": SampleRequest("ddpm", 12, seed=3, class_label=1, guidance_scale=2.0),
    "ddim eta 0.5": SampleRequest("ddim", 12, eta=0.5, seed=3, class_label=0, guidance_scale=3.0),
    "ddim eta 0": SampleRequest("ddim", 9, seed=8, class_label=2),
}


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("inpaint", [False, True])
def test_a_fork_with_the_parent_s_settings_ends_on_its_image(model, name, inpaint) -> None:
    request = REQUESTS[name]
    inputs = {"image": sample_images()[0], "mask_preset": "half"} if inpaint else {}
    if inpaint:
        request = dataclasses.replace(request, jump_length=3, jump_n_sample=2)
    parent = Job.prepare(request, model.info, **inputs)
    result = execute(model, parent)
    plan, _ = build_plan(model, parent)
    calls = len(result.calls)
    for at in (0, 1, calls // 2, calls - 1):
        left = plan.steps_left(at)  # the timesteps left there: the same moves, jumps and all
        child = parent.forked(dataclasses.replace(parent.request, num_inference_steps=left), at)
        kept = result.trajectory.frames[at - 1].start if at else None
        replayed = image_of(model, child)
        assert np.array_equal(replayed, result.images), (name, at)
        if kept is not None:  # the state the parent's trajectory kept: the same, no replay
            assert np.array_equal(image_of(model, child, at=kept), result.images)


def test_the_start_state_decides_the_continuation(model) -> None:
    """Taken up at step 5 with another noise (generators reset), a DDPM fork ends elsewhere:
    the state a fork starts from is what makes it its parent's continuation."""
    parent = Job.prepare(REQUESTS["ddpm"], model.info)
    plan, _ = build_plan(model, parent)
    start = plan.replay(5)
    reset = dataclasses.replace(start, generator_states=plan.begin().generator_states)
    ends = []
    for begin in (start, reset):
        *_, last = plan.steps(begin)
        ends.append(to_uint8(last.x_t))
    assert np.array_equal(ends[0], execute(model, parent).images)
    assert not np.array_equal(ends[0], ends[1])


def test_a_fork_with_other_settings_goes_on_from_the_step_s_timestep(model) -> None:
    parent = Job.prepare(REQUESTS["ddim eta 0"], model.info)
    plan, _ = build_plan(model, parent)
    at = 4
    level = plan.level(plan.replay(at).position)
    child = parent.forked(dataclasses.replace(parent.request, num_inference_steps=3, eta=1.0), at)
    result = execute(model, child)
    assert result.calls[0] == level and len(result.calls) == 3 and result.calls[-1] < level
    with pytest.raises(InputError, match="takes at most"):
        big = dataclasses.replace(parent.request, num_inference_steps=level + 2)
        execute(model, parent.forked(big, at))


def test_a_fork_s_png_read_back_makes_it_again(model, tmp_path, tiny_model_dir) -> None:
    parent = Job.prepare(REQUESTS["ddpm"], model.info)
    child = parent.forked(dataclasses.replace(parent.request, sampler="ddim", eta=0.0,
                                              num_inference_steps=4), 6)  # fmt: skip
    result = execute(model, child)
    [path] = write(plan_outputs(child, tmp_path, "fork"), [result])
    record = read_record(path)
    assert record.parent is not None and record.at_step == 6
    assert record.parent.request == parent.request.for_image(0)
    again = execute(model, record.job(model.info))
    assert np.array_equal(again.images, result.images)
    # and on the command line, from the parent's own PNG
    [made] = write(plan_outputs(parent, tmp_path, "parent"), [execute(model, parent)])
    argv = ["fork", str(made), "--at-step", "6", "--sampler", "ddim", "--eta", "0", "--steps",
            "4", "--model", str(tiny_model_dir), "--out", str(tmp_path / "cli.png")]  # fmt: skip
    assert main(argv) == 0
    assert np.array_equal(read_record(tmp_path / "cli.png").job(model.info).request.to_dict(),
                          child.request.to_dict())  # fmt: skip
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli.png")), result.images[0])


def test_a_compare_cell_is_the_plain_run_of_its_settings(model) -> None:
    base = SampleRequest(seed=5, class_label=1, guidance_scale=3.0)
    rows = product([Axis("sampler", ("ddpm", "ddim")), Axis("eta", (0.0, 1.0))])
    table = sweep("compare", base, rows, product([Axis("steps", (4, 10))]))
    assert table.row_labels == ("DDPM", "DDIM, eta=0", "DDIM, eta=1")  # no eta for DDPM
    comparison = compare(table, model.info, model.schedule.num_train_timesteps)
    assert comparison.reference == len(table.cells)  # DDIM at T: no cell, one more job
    for job in comparison.jobs[:3]:
        plain = Job.prepare(job.request, model.info)
        assert np.array_equal(image_of(model, job), image_of(model, plain))
    images = [image_of(model, job)[0] for job in comparison.jobs]
    distances = comparison.distances(images)
    assert len(distances) == 7 and distances[2] > distances[3] > 0 == distances[6]  # 4, 10 steps
    with pytest.raises(InputError, match="not in the table"):
        compare(table, model.info, 100, reference=(3, 0))
