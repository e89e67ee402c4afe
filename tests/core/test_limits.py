"""Limits checked before allocation: the counts are exact, the memory estimate grows as the
work does, and a run over the budget is refused at once with what to change."""

from __future__ import annotations

import time

import pytest

from diffusion_studio.core import checks
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.limits import activation_bytes, repaint_calls
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.moves import count_network_calls, jump_schedule
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run


@pytest.mark.parametrize("steps", [1, 5, 10, 11, 19, 20, 21, 50, 250])
@pytest.mark.parametrize(("length", "resamples"), [(1, 1), (1, 3), (10, 10), (3, 4), (30, 2)])
def test_repaint_calls_are_counted_without_building_the_schedule(steps, length, resamples):
    path = jump_schedule(steps, length, resamples)
    assert repaint_calls(steps, length, resamples) == count_network_calls(path)


def test_the_estimate_grows_with_the_pixels_and_the_attention() -> None:
    config = {
        "block_out_channels": [32, 64],
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
        "attention_head_dim": 8,
    }
    small, large = activation_bytes(config, 32, 32), activation_bytes(config, 64, 64)
    assert large > 4 * small  # the attention scores grow with pixels squared
    plain = {**config, "down_block_types": ["DownBlock2D", "DownBlock2D"], "add_attention": False}
    assert activation_bytes(plain, 64, 64) == 4 * activation_bytes(plain, 32, 32)


def test_a_run_over_the_memory_budget_is_refused_before_any_work(tiny_model_dir, monkeypatch):
    model = load_model(tiny_model_dir)
    request = SampleRequest(num_inference_steps=3, batch_size=8)
    list(run(model, Job.prepare(request, model.info)))  # fits
    monkeypatch.setattr(checks, "memory_budget", lambda *args: 1_000_000)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"8 images of 16x16 need about .* and 976\.6 KB is free"):
        run(model, Job.prepare(request, model.info))
    assert time.monotonic() - started < 5.0  # refused before any network call


def test_a_repaint_run_over_a_million_calls_is_refused(tiny_model_dir) -> None:
    import numpy as np

    model = load_model(tiny_model_dir)
    request = SampleRequest(num_inference_steps=100, jump_length=10, jump_n_sample=10**6)
    source, mask = np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), bool)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"would make 90,000,010 network calls; the limit"):
        run(model, Job.prepare(request, model.info, image=source, mask=mask))
    assert time.monotonic() - started < 5.0  # refused before the schedule is built
