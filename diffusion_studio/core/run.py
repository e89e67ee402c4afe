"""A run as data, end to end: a frozen Job in, Steps along its call plan, a RunResult out.

The window and the command line both make a Job with `Job.prepare` (the one place that loads
and fits the source image and the mask) and hand it to `execute`, which runs `run(model, job)`,
turns each Step into a uint8 Frame, records them in a memory-budgeted Trajectory and stops
between two network calls when its cancel event is set. Plain sampling without a source,
RePaint inpainting with a source and an inpaint_mask.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffusion_studio.core.classifier import Classifier, ClassifierInfo
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import (
    fit_to_size,
    load_image,
    to_channels,
    to_pil,
    to_tensor,
    to_uint8,
)
from diffusion_studio.core.limits import (
    MAX_NETWORK_CALLS,
    activation_bytes,
    format_bytes,
    memory_budget,
    repaint_calls,
)
from diffusion_studio.core.masks import (
    PRESETS,
    fit_mask,
    invert_mask,
    load_mask,
    mask_to_tensor,
    parse_preset,
    preset_mask,
)
from diffusion_studio.core.model import DiffusionModel, ModelInfo
from diffusion_studio.core.repaint import Move, repaint, repaint_moves
from diffusion_studio.core.request import LEARNED_VARIANCES, SampleRequest
from diffusion_studio.core.sampling import (
    ClassifierGrad,
    Step,
    make_update,
    previous_timesteps,
    randn_like,
    sample,
)
from diffusion_studio.core.schedule import NoiseSchedule

TRAJECTORY_BUDGET_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Job:
    """Everything one run needs but the network: the request (spacing and variance resolved
    to the model's when it left them open), the model's identity, and for inpainting the
    source (H, W, C) uint8 and the inpaint_mask (H, W) bool, True = generate, both at the
    model's size. `notes` says what was done to fit the inputs, for a person."""

    request: SampleRequest
    model: ModelInfo
    source: np.ndarray | None = None
    mask: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    classifier: ClassifierInfo | None = None  # the guiding classifier, when the scale is > 0

    @property
    def inpaint(self) -> bool:
        return self.source is not None

    @classmethod
    def prepare(
        cls,
        request: SampleRequest,
        model: ModelInfo,
        *,
        image: str | Path | np.ndarray | None = None,
        mask: str | Path | np.ndarray | None = None,
        mask_preset: str | None = None,
        mask_seed: int | None = None,
        invert_mask_file: bool = False,
        classifier: ClassifierInfo | None = None,
    ) -> Job:
        """The job of `request` for `model`: an image (a file, or an (H, W, C) uint8 array) is
        centre-cropped and resized to the model's size and given its channels; the mask (a
        file, white = generate, or with invert_mask_file white = keep; an (H, W) bool array;
        or a preset drawn with mask_seed, default the request's seed) fitted the same way.
        An image needs a mask and a mask an image. A classifier is kept only when the request's
        classifier scale uses it. Raises InputError naming the file."""
        request = dataclasses.replace(
            request,
            timestep_spacing=request.timestep_spacing or model.timestep_spacing,
            variance_type=request.variance_type or model.variance_type,
        )
        request.check()
        if request.classifier_scale and classifier is None:
            raise InputError("a classifier scale needs a classifier (--classifier FOLDER)")
        guide = classifier if request.classifier_scale else None
        has_mask = mask is not None or mask_preset is not None
        if (image is None) != (not has_mask):
            raise InputError("inpainting needs both a source image and a mask")
        if image is None:
            return cls(request, model, classifier=guide)
        source, original, note = fit_source(image, model)
        size = model.resolution
        if mask_seed is not None and mask_preset is None:
            raise InputError("a mask seed draws a random preset; a mask file has none")
        if mask_preset is not None:
            preset, side = parse_preset(mask_preset)
            if mask_seed is not None and not PRESETS[preset].random:
                raise InputError(f"a mask seed draws a random preset; {mask_preset} is not one")
            if invert_mask_file:
                raise InputError("inverting is for a mask file (white = keep), not a preset")
            seed = request.seed if mask_seed is None else mask_seed
            inpaint_mask = preset_mask(preset, size, seed=seed, side=side)
        else:
            inpaint_mask = fit_inpaint_mask(mask, size, original, invert_mask_file)
        return cls(request, model, source, inpaint_mask, (note,) if note else (), guide)


def fit_source(
    image: str | Path | np.ndarray, model: ModelInfo
) -> tuple[np.ndarray, tuple[int, int], str | None]:
    """A source image (a file, or an (H, W, C) uint8 array) at the model's size and channels:
    (the image, its original (height, width), a note for a person when it was cropped or
    resized). The one place images are fitted, for the command line and the window alike."""
    if isinstance(image, np.ndarray):
        original = image.shape[:2]
        picture = to_pil(to_channels(image, model.in_channels))
    else:
        picture = load_image(image, channels=model.in_channels)
        original = (picture.height, picture.width)
    fitted, note = fit_to_size(picture, model.resolution)
    return np.asarray(fitted).reshape(*model.resolution, model.in_channels), original, note


def fit_inpaint_mask(
    mask: str | Path | np.ndarray,
    size: tuple[int, int],
    original: tuple[int, int],
    invert: bool = False,
) -> np.ndarray:
    """A mask (a file, white = generate, or with `invert` white = keep; or an (H, W) array,
    nonzero = generate) fitted to `size` as its image of `original` size was."""
    if isinstance(mask, np.ndarray):
        loaded, what = (invert_mask(mask) if invert else mask != 0), "the mask"
    else:
        loaded, what = load_mask(mask, invert=invert), f"the mask {mask}"
    if loaded.shape not in (original, size):
        raise InputError(
            f"{what} is {loaded.shape[1]}x{loaded.shape[0]}, but the image is "
            f"{original[1]}x{original[0]}: they must be the same size"
        )
    return fit_mask(loaded, size)


@dataclass(frozen=True)
class CallPlan:
    """The path of a run through the timesteps, as moves (t, t_next), -1 = the clean image:
    a move down is one network call, a move up (RePaint's jumps back) re-noises. The same plan
    drives the run, its progress bar and the live view's timeline."""

    moves: tuple[Move, ...]

    @property
    def calls(self) -> list[int]:
        """The timestep of each network call, in order."""
        return [t for t, t_next in self.moves if t_next < t]


def call_plan(request: SampleRequest, schedule: NoiseSchedule, inpaint: bool) -> CallPlan:
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing)
    if inpaint:
        return CallPlan(tuple(repaint_moves(timesteps, request.jump_length, request.jump_n_sample)))
    return CallPlan(tuple(zip(timesteps, previous_timesteps(timesteps))))


def network_calls(request: SampleRequest, inpaint: bool) -> int:
    """How many network calls a run of this request makes, counted, not built."""
    if not inpaint:
        return request.num_inference_steps
    return repaint_calls(request.num_inference_steps, request.jump_length, request.jump_n_sample)


def validate(
    request: SampleRequest,
    model: DiffusionModel,
    inpaint: bool = False,
    classifier: Classifier | None = None,
) -> None:
    """Raise InputError, with what to change, for a request this model (and classifier) cannot
    run: its values, and the network calls and memory it needs (checked before anything is
    made). With classifier guidance the class is the classifier's."""
    request.check()
    r, T, info = request, model.schedule.num_train_timesteps, model.info
    if not 1 <= r.num_inference_steps <= T:
        raise InputError(
            f"steps must be between 1 and {T} (the model's training steps), "
            f"got {r.num_inference_steps}"
        )
    if r.classifier_scale:
        if classifier is None:
            raise InputError("a classifier scale needs a classifier (--classifier FOLDER)")
        unfit = classifier.mismatch(model)
        if unfit:
            raise InputError(f"the classifier does not fit the model: {unfit}")
        if r.class_label is not None and not 0 <= r.class_label < len(classifier.class_names):
            raise InputError(
                f"class index {r.class_label} is out of range 0..{len(classifier.class_names) - 1}"
            )
    if r.class_label is not None and (info.conditional or not r.classifier_scale):
        model.class_index(r.class_label)
    if r.variance_type in LEARNED_VARIANCES and not info.learns_variance:
        raise InputError(
            f"{info.name} does not learn its variance: choose fixed_small or fixed_large"
        )
    if info.conditional and info.null_class is None:
        if r.class_label is None:
            raise InputError(f"{info.name} has no null class: choose a class")
        if r.guidance_scale != 1.0:
            raise InputError(f"{info.name} was trained without a null class, so guidance must be 1")
    check_resources(request, model, inpaint, classifier)


def check_resources(
    request: SampleRequest,
    model: DiffusionModel,
    inpaint: bool,
    classifier: Classifier | None = None,
    trajectory_bytes: int = TRAJECTORY_BUDGET_BYTES,
) -> None:
    """Refuse a run whose network calls or memory are over the limits (core/limits.py): the
    activations of the batch (twice with guidance), the classifier's with its backward pass,
    and the trajectory it may record."""
    calls = network_calls(request, inpaint)
    if calls > MAX_NETWORK_CALLS:
        raise InputError(
            f"this RePaint run would make {calls:,} network calls; the limit is "
            f"{MAX_NETWORK_CALLS:,}: lower the resample count (--jump-n-sample) or the steps"
        )
    height, width = model.info.resolution
    guided = model.info.conditional and request.guidance_scale not in (0.0, 1.0)
    images = request.batch_size * (2 if guided else 1)
    frame = 2 * request.batch_size * height * width * model.info.in_channels  # x_t and x0
    need = images * activation_bytes(model.unet.config, height, width) + min(
        frame * calls, max(trajectory_bytes, 2 * frame)
    )
    if classifier is not None and request.classifier_scale:  # forward kept for the backward
        need += 2 * request.batch_size * activation_bytes(classifier.network.config, height, width)
    budget = memory_budget(model.device.type, model.device.index)
    if need > budget:
        raise InputError(
            f"{request.batch_size} images of {width}x{height} need about {format_bytes(need)} "
            f"on {model.device}, and {format_bytes(budget)} is free: generate fewer at a time "
            "(a smaller batch, -n)"
        )


def run(
    model: DiffusionModel,
    job: Job,
    classifier: Classifier | None = None,
    guidance_norms: list[float] | None = None,
) -> Iterator[Step]:
    """Validate the job against the model, then return the stream of Steps along its call
    plan. The last Step's x_t holds the images; a known pixel of an inpainting is the source's.
    With the job's classifier (loaded) its gradient guides every step, and the RMS of each
    step's scaled gradient is appended to `guidance_norms`, for the live view."""
    request, info = job.request, model.info
    if request.classifier_scale and (classifier is None or job.classifier is None):
        raise InputError("this job is classifier-guided: give its classifier")
    if (
        classifier is not None
        and job.classifier is not None
        and classifier.path != job.classifier.path
    ):
        raise InputError(
            f"the job was prepared for the classifier {job.classifier.name}, not {classifier.name}"
        )
    if (job.model.resolution, job.model.in_channels) != (info.resolution, info.in_channels):
        raise InputError(
            f"the job was prepared for {job.model.name} ({job.model.resolution}), "
            f"not for {info.name}: prepare it again"
        )
    guide = classifier if request.classifier_scale else None
    validate(request, model, job.inpaint, guide)
    schedule, device = model.schedule, model.device
    generators = [
        torch.Generator("cpu").manual_seed(request.seed + i) for i in range(request.batch_size)
    ]
    (height, width), channels = info.resolution, info.in_channels
    x_T = randn_like(
        torch.empty(request.batch_size, channels, height, width, device=device), generators
    )
    gradient = None
    if guide is not None:
        guide.to(device)
        labels = torch.full((request.batch_size,), request.class_label, device=device)
        gradient = _measured(guide.gradient(labels, request.classifier_scale), guidance_norms)
    update = make_update(request.sampler, schedule, generators, request.options(), gradient)
    model_fn = model.model_fn(request.class_label, request.guidance_scale, request.batch_size)
    plan = call_plan(request, schedule, job.inpaint)
    if job.source is None or job.mask is None:
        return sample(model_fn, x_T, plan.calls, update)
    source, inpaint_mask = to_tensor(job.source, device), mask_to_tensor(job.mask, device)
    return repaint(model_fn, x_T, source, inpaint_mask, schedule, plan.moves, update, generators)


def _measured(gradient: ClassifierGrad, norms: list[float] | None) -> ClassifierGrad:
    if norms is None:
        return gradient

    def measured(x_t: torch.Tensor, t: int) -> torch.Tensor:
        term = gradient(x_t, t)
        norms.append(float(term.float().pow(2).mean().sqrt()))
        return term

    return measured


# --- what a run leaves ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Frame:
    """One network call, ready to draw: the batch's x_t and predicted x_0, (N, H, W, C) uint8."""

    index: int
    total: int
    timestep: int
    x_t: np.ndarray
    x0_pred: np.ndarray
    guidance: float | None = None  # RMS of classifier guidance's s grad log p at this call

    @property
    def nbytes(self) -> int:
        return self.x_t.nbytes + self.x0_pred.nbytes


@dataclass
class Trajectory:
    """Every recorded step of a run, within a memory budget: when the frames would exceed it,
    every second one is dropped (the newest is always kept), so a long run stays scrubbable."""

    budget_bytes: int = TRAJECTORY_BUDGET_BYTES
    frames: list[Frame] = field(default_factory=list)
    stride: int = 1

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames)

    def add(self, frame: Frame) -> None:
        if self.frames and frame.index % self.stride and frame.index != frame.total - 1:
            return
        self.frames.append(frame)
        self.fit(self.budget_bytes)

    def fit(self, budget_bytes: int) -> None:
        """Drop every second frame (the newest kept) until the frames fit `budget_bytes`."""
        self.budget_bytes = min(self.budget_bytes, budget_bytes)
        while len(self.frames) > 2 and self.nbytes > self.budget_bytes:
            self.stride *= 2
            last = self.frames[-1]
            self.frames = [f for f in self.frames[:-1] if f.index % self.stride == 0] + [last]

    def drop(self) -> None:
        """Keep the last frame only (the result), to give the memory back."""
        self.frames = self.frames[-1:]


@dataclass(eq=False)
class RunResult:
    """A finished run: its job, the images (N, H, W, C) uint8, the recorded steps and the time.
    No network: a result outlives the model that made it."""

    job: Job
    images: np.ndarray
    trajectory: Trajectory
    seconds: float
    calls: list[int] = field(default_factory=list)  # the timestep of each network call
    written: list[Path] = field(default_factory=list)  # where write_result put it

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.trajectory.nbytes


def execute(
    model: DiffusionModel,
    job: Job,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    cancel: threading.Event | None = None,
    budget_bytes: int = TRAJECTORY_BUDGET_BYTES,
    classifier: Classifier | None = None,
) -> RunResult | None:
    """Run a job to its result: every Step as a uint8 Frame, recorded and handed to
    `on_frame`; None if `cancel` was set (checked before the first network call and after
    each one). Errors are InputError for what a person can change."""
    started = time.perf_counter()
    trajectory = Trajectory(budget_bytes)
    if cancel is not None and cancel.is_set():
        return None
    norms: list[float] = []
    steps = run(model, job, classifier, norms)
    with torch.inference_mode():
        for step in steps:
            x_t, x0_pred = to_uint8(step.x_t), to_uint8(step.x0_pred)
            guidance = norms[-1] if norms else None
            frame = Frame(step.index, step.total, step.timestep, x_t, x0_pred, guidance)
            trajectory.add(frame)
            if on_frame is not None:
                on_frame(frame)
            if cancel is not None and cancel.is_set():
                steps.close()
                return None
    images = trajectory.frames[-1].x_t
    calls = call_plan(job.request, model.schedule, job.inpaint).calls
    return RunResult(job, images, trajectory, time.perf_counter() - started, calls)
