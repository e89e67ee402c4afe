"""A run as data, end to end: a frozen Job in, Steps along its plan, a RunResult out.

The window and the command line both make a Job with `Job.prepare` (the one place that loads
and fits the source image and the mask) and hand it to `execute`, which drives its Plan, turns
each Step into a uint8 Frame, records them in a memory-budgeted Trajectory and stops between
two network calls when its cancel event is set. Plain sampling without a source, RePaint
inpainting with a source and an inpaint_mask, a fork from a step of another run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import torch

from diffusion_studio.core.classifier import Classifier
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.job import Job
from diffusion_studio.core.limits import START_BUDGET_BYTES, TRAJECTORY_BUDGET_BYTES
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.plan import Start, build_plan
from diffusion_studio.core.result import Frame, RunResult, Trajectory
from diffusion_studio.core.sampling import Step


def run(
    model: DiffusionModel,
    job: Job,
    classifier: Classifier | None = None,
    guidance_norms: list[float] | None = None,
) -> Iterator[Step]:
    """Validate the job against the model, then return the stream of Steps along its call
    plan (a fork's from its step). The last Step's x_t holds the images; a known pixel of an
    inpainting is the source's."""
    plan, start = build_plan(model, job, classifier, guidance_norms)
    return plan.steps(start)


def execute(
    model: DiffusionModel,
    job: Job,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    cancel: threading.Event | None = None,
    budget_bytes: int = TRAJECTORY_BUDGET_BYTES,
    classifier: Classifier | None = None,
    at: Start | None = None,
) -> RunResult | None:
    """Run a job to its result (a fork from `at` when its parent's state there was kept):
    every Step as a uint8 Frame, recorded and handed to `on_frame`; None if `cancel` was set
    (checked before the first network call and after each one). Errors are InputError for
    what a person can change.

    The frames of a run of one image keep the state a fork needs (Start) when all of them
    fit START_BUDGET_BYTES; otherwise a fork replays its parent up to its step, which the
    same job on the same device does exactly (a batch's image is forked as that image alone,
    so it never keeps them)."""
    started = time.perf_counter()
    trajectory = Trajectory(budget_bytes)
    if cancel is not None and cancel.is_set():
        return None
    norms: list[float] = []
    plan, start = build_plan(model, job, classifier, norms, at)
    one_start = 4 * math.prod(plan.shape) + 8192
    keep = job.request.batch_size == 1 and one_start * len(plan.calls) <= START_BUDGET_BYTES
    steps = plan.steps(start)
    with torch.inference_mode():
        for step in steps:
            x_t, x0_pred = to_uint8(step.x_t), to_uint8(step.x0_pred)
            guidance = norms[-1] if norms else None
            kept = plan.capture(step) if keep else None
            frame = Frame(step.index, step.total, step.timestep, x_t, x0_pred, guidance, kept)
            trajectory.add(frame)
            if on_frame is not None:
                on_frame(frame)
            if cancel is not None and cancel.is_set():
                steps.close()
                return None
    images = trajectory.frames[-1].x_t
    return RunResult(job, images, trajectory, time.perf_counter() - started, plan.calls)
