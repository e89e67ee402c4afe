"""A run built once and driven from any state: the call plan (the moves through the
timesteps), the checks a request must pass for a model, and the Plan (the network callable,
the update, the generators, RePaint's merge) with the Start it is driven from. A fork is a
plan of its own taken up at a Start of its parent's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from diffusion_studio.core.canvas import check_windows
from diffusion_studio.core.checks import validate
from diffusion_studio.core.classifier import Classifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.guidance import ClassifierGrad
from diffusion_studio.core.images import to_tensor
from diffusion_studio.core.job import Job
from diffusion_studio.core.limits import (
    MAX_NETWORK_CALLS,
)
from diffusion_studio.core.masks import mask_to_tensor
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.moves import call_plan, fork_moves, level_at, network_calls, steps_left
from diffusion_studio.core.repaint import jump_back, known_region
from diffusion_studio.core.restore import projected, restoration
from diffusion_studio.core.sampling import (
    NO_STATE,
    Merge,
    ModelFn,
    Move,
    Renoise,
    SolverState,
    Step,
    Update,
    make_update,
    randn_like,
    tiled,
    walk,
)


@dataclass(frozen=True, eq=False)
class Start:
    """Where a run is taken up: after `position` moves of its call plan and `calls_done`
    network calls, at x (N, C, H, W) float32, with the solver's state and each image's
    generator state (torch.Generator.get_state). A run starts at Plan.begin(); a fork at the
    Start of a step of its parent, so that, its settings unchanged, it ends on the parent's
    image bit for bit."""

    position: int
    calls_done: int
    x: torch.Tensor
    state: SolverState
    generator_states: tuple[torch.Tensor, ...]

    @property
    def nbytes(self) -> int:
        tensors = (self.x, *self.generator_states)
        return sum(t.numel() * t.element_size() for t in tensors) + self.state.nbytes


@dataclass(eq=False)
class Plan:
    """A run built once, and validated once (build_plan): its job, the moves of its call
    plan, the network callable, the update, one generator per image and, for an inpainting,
    RePaint's merge and re-noising. `steps` drives it from any Start."""

    job: Job
    moves: tuple[Move, ...]
    model_fn: ModelFn
    update: Update
    generators: list[torch.Generator]
    shape: tuple[int, int, int, int]
    device: torch.device
    merge: Merge | None = None
    renoise: Renoise | None = None

    @property
    def calls(self) -> list[int]:
        """The timestep of each network call, in order."""
        return [t for t, t_next in self.moves if t_next < t]

    def level(self, position: int) -> int:
        """The timestep x is at after `position` moves (-1: the clean image)."""
        return level_at(self.moves, position)

    def steps_left(self, calls_done: int) -> int:
        """The steps a fork after `calls_done` calls takes to go on as this run does."""
        return steps_left(self.moves, calls_done)

    def begin(self) -> Start:
        """Position 0: x_T, image i drawn from the seed + i."""
        seed = self.job.request.seed
        for i, generator in enumerate(self.generators):
            generator.manual_seed(seed + i)
        x_T = randn_like(torch.empty(self.shape, device=self.device), self.generators)
        return Start(0, 0, x_T, NO_STATE, tuple(g.get_state() for g in self.generators))

    def steps(self, start: Start | None = None) -> Iterator[Step]:
        """The Steps from `start` (default the beginning) to the end of the plan."""
        start = start or self.begin()
        for generator, state in zip(self.generators, start.generator_states):
            generator.set_state(state)
        x = start.x.to(self.device)
        return walk(self.model_fn, x, self.moves, self.update, position=start.position,
                    calls_done=start.calls_done, state=start.state.to(self.device),
                    merge=self.merge,
                    renoise=self.renoise)  # fmt: skip

    def capture(self, step: Step) -> Start:
        """The Start after `step`, to take the run up there later: call it as the step comes
        out of `steps`, before the next (the generators move on with it)."""
        return Start(step.position, step.index + 1, step.x_t.detach().clone(), step.state.kept(),
                     tuple(g.get_state() for g in self.generators))  # fmt: skip

    def replay(self, calls_done: int) -> Start:
        """The Start after `calls_done` network calls, by running them: the same job on the same
        device draws the same numbers, so this is the state the run had there."""
        if not 0 <= calls_done < len(self.calls):
            raise InputError(
                f"a run of {len(self.calls)} steps continues from step 0 to "
                f"{len(self.calls) - 1}, not {calls_done}"
            )
        if calls_done == 0:
            return self.begin()
        for step in self.steps():
            if step.index + 1 == calls_done:
                return self.capture(step)
        raise AssertionError("unreachable: the plan has fewer calls than it says")


def build_plan(
    model: DiffusionModel,
    job: Job,
    classifier: Classifier | None = None,
    guidance_norms: list[float] | None = None,
    at: Start | None = None,
) -> tuple[Plan, Start | None]:
    """The plan of a job, validated against the model once; for a fork, its plan and its
    Start: `at` (the parent's state at the fork's step, kept by its trajectory), or else the
    parent replayed up to that step. With the job's classifier (loaded) its gradient guides
    every step, and the RMS of each step's scaled gradient is appended to `guidance_norms`,
    for the live view."""
    _check_fits(model, job, classifier)
    if job.fork is None:
        validate(job.request, model, job.jumps, _guide(job, classifier))  # before any list
        moves = call_plan(job.request, model.schedule, job.jumps).moves
        return _assemble(model, job, moves, classifier, guidance_norms), None
    parent, _ = build_plan(model, job.fork.parent, classifier)
    if at is None or at.calls_done != job.fork.at_step:
        at = parent.replay(job.fork.at_step)
    return fork_plan(model, parent, at, job, classifier, guidance_norms)


def fork_plan(
    model: DiffusionModel,
    parent: Plan,
    at: Start,
    job: Job,
    classifier: Classifier | None = None,
    guidance_norms: list[float] | None = None,
) -> tuple[Plan, Start]:
    """A fork: the parent's run taken up at `at` with the job's settings (sampler, eta,
    guidance, class, classifier scale), along fork_moves."""
    request = job.request
    validate(request, model, job.jumps, _guide(job, classifier))
    moves = fork_moves(parent.moves, parent.job.request, at.calls_done, request, model.schedule,
                       job.jumps)  # fmt: skip
    plan = _assemble(model, job, moves, classifier, guidance_norms)
    same_solver = request.sampler == parent.job.request.sampler
    return plan, Start(0, 0, at.x, at.state if same_solver else NO_STATE, at.generator_states)


def _check_fits(model: DiffusionModel, job: Job, classifier: Classifier | None) -> None:
    info, request = model.info, job.request
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
    if job.windows:
        check_windows(job.windows, job.shape, info.resolution, job.mask)
        calls = network_calls(job.request, job.jumps) * len(job.windows)
        if calls > MAX_NETWORK_CALLS:
            height, width = job.shape
            raise InputError(
                f"a {width}x{height} canvas is {len(job.windows):,} windows of the model's size: "
                f"{calls:,} network calls, over the limit of {MAX_NETWORK_CALLS:,}; take fewer "
                "steps or a smaller picture"
            )
    if (job.model.resolution, job.model.in_channels) != (info.resolution, info.in_channels):
        raise InputError(
            f"the job was prepared for {job.model.name} ({job.model.resolution}), "
            f"not for {info.name}: prepare it again"
        )


def _assemble(
    model: DiffusionModel,
    job: Job,
    moves: tuple[Move, ...],
    classifier: Classifier | None,
    guidance_norms: list[float] | None,
) -> Plan:
    request, info = job.request, model.info
    guide = _guide(job, classifier)
    schedule, device = model.schedule, model.device
    generators = [
        torch.Generator("cpu").manual_seed(request.seed + i) for i in range(request.batch_size)
    ]
    gradient = None
    if guide is not None:
        guide.to(device)
        labels = torch.full((request.batch_size,), request.class_label, device=device)
        gradient = _measured(guide.gradient(labels, request.classifier_scale), guidance_norms)
    update = make_update(request.sampler, schedule, generators, request.options(), gradient)
    model_fn = model.model_fn(request.class_label, request.guidance_scale, request.batch_size,
                              request.precision)  # fmt: skip
    if job.windows:  # MultiDiffusion: the canvas by windows of the model's size
        model_fn = tiled(model_fn, job.windows, info.resolution)
    (height, width), channels = job.shape, info.in_channels
    shape = (request.batch_size, channels, height, width)
    merge = renoise = None
    if job.jumps:
        renoise = jump_back(schedule, generators)
    if job.restore is not None:  # DDNM: every predicted x_0 projected onto the observation
        model_fn = projected(model_fn, schedule, restoration(job, device))
    elif job.source is not None and job.mask is not None:  # RePaint: the known region merged
        source, inpaint_mask = to_tensor(job.source, device), mask_to_tensor(job.mask, device)
        merge = known_region(source, inpaint_mask, schedule, generators)
    return Plan(job, moves, model_fn, update, generators, shape, device, merge, renoise)


def _guide(job: Job, classifier: Classifier | None) -> Classifier | None:
    return classifier if job.request.classifier_scale else None


def _measured(gradient: ClassifierGrad, norms: list[float] | None) -> ClassifierGrad:
    if norms is None:
        return gradient

    def measured(x_t: torch.Tensor, t: int) -> torch.Tensor:
        term = gradient(x_t, t)
        norms.append(float(term.float().pow(2).mean().sqrt()))
        return term

    return measured
