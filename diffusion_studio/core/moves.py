"""The path of a run through the timesteps, counted without running anything: the call plan
of a request (moves down, RePaint's jumps back up), the network calls it makes, and the moves of
a fork taken up from a step of its parent (the parent's own moves when it goes on as the parent
did, respaced from that step's timestep otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.limits import repaint_calls
from diffusion_studio.core.request import SampleRequest

if TYPE_CHECKING:
    from diffusion_studio.core.schedule import NoiseSchedule


Move = tuple[int, int]
"""(t, t_next) in training timesteps, -1 = the clean image: down is one network call (a
reverse step), up re-noises (RePaint's jumps back)."""


def previous_timesteps(timesteps: Sequence[int]) -> list[int]:
    """The timestep each step goes to: the next in the sequence; -1 (clean) after the last."""
    return [*timesteps[1:], -1]


def descent(timesteps: Sequence[int]) -> list[Move]:
    """The moves of a plain run over descending `timesteps`: each to the next, the last to -1."""
    return list(zip(timesteps, previous_timesteps(timesteps)))


def jump_schedule(num_inference_steps: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The resampling path of RePaint's official get_schedule_jump, in inference-step indices.

    Starts at the top index S - 1 (x_T) and ends at -1 (the clean image); every move is +-1. A
    move down is one network call, a move up re-noises by one step (paper sec. 4.2). At every
    multiple j of jump_length below S - jump_length the path goes back up jump_length steps,
    jump_n_sample - 1 times. For S = 250, j = 10, n = 10: 2,410 moves down, 2,160 up.
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise InputError("jump length and resample count must be at least 1")
    jumps_left = {
        j: jump_n_sample - 1 for j in range(0, num_inference_steps - jump_length, jump_length)
    }
    i = num_inference_steps - 1
    path = [i]
    while i >= 0:
        i -= 1
        path.append(i)
        if jumps_left.get(i, 0) > 0:
            jumps_left[i] -= 1
            for _ in range(jump_length):
                i += 1
                path.append(i)
    return path


def count_network_calls(path: Sequence[int]) -> int:
    """How many network calls (moves down) a jump schedule makes."""
    return sum(1 for cur, nxt in pairwise(path) if nxt < cur)


def repaint_moves(timesteps: Sequence[int], jump_length: int, jump_n_sample: int) -> list[Move]:
    """RePaint's path over descending `timesteps` as moves between timesteps (the jump
    schedule of get_schedule_jump, in inference steps, mapped to the timesteps)."""
    ascending = list(reversed(timesteps))
    path = jump_schedule(len(ascending), jump_length, jump_n_sample)

    def level(i: int) -> int:
        return ascending[i] if i >= 0 else -1

    return [(level(cur), level(nxt)) for cur, nxt in pairwise(path)]


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


def call_plan(request: SampleRequest, schedule: NoiseSchedule, jumps: bool) -> CallPlan:
    """The moves of a run of `request`: down its timesteps, with RePaint's jumps back when
    `jumps` (an inpainting, or a restoration's time travel)."""
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing)
    if jumps:
        return CallPlan(tuple(repaint_moves(timesteps, request.jump_length, request.jump_n_sample)))
    return CallPlan(tuple(descent(timesteps)))


def network_calls(request: SampleRequest, jumps: bool) -> int:
    """How many network calls a run of this request makes, counted, not built."""
    if not jumps:
        return request.num_inference_steps
    return repaint_calls(request.num_inference_steps, request.jump_length, request.jump_n_sample)


def fork_moves(
    parent: tuple[Move, ...],
    before: SampleRequest,
    calls_done: int,
    request: SampleRequest,
    schedule: NoiseSchedule,
    jumps: bool,
) -> tuple[Move, ...]:
    """The moves of a fork after `calls_done` calls of a parent of moves `parent` (and request
    `before`): its num_inference_steps timesteps from the level x is at there. With as many as
    the parent had left (steps_left), its spacing and its jumps, the parent's own remaining
    moves; otherwise respaced from that level (trailing, linspace or quadratic, counted in
    training steps from there), with RePaint's jumps when the job has them (`jumps`)."""
    position = position_after(parent, calls_done)
    level = level_at(parent, position)
    if level < 0:
        raise InputError("the run is finished there: fork from an earlier step")
    same = (request.timestep_spacing, request.jump_length, request.jump_n_sample) == (
        before.timestep_spacing, before.jump_length, before.jump_n_sample)  # fmt: skip
    if same and request.num_inference_steps == steps_left(parent, calls_done):
        return parent[position:]
    if request.num_inference_steps > level + 1:
        raise InputError(
            f"from timestep {level} a fork takes at most {level + 1} steps, "
            f"not {request.num_inference_steps}"
        )
    timesteps = schedule.timesteps(request.num_inference_steps, request.timestep_spacing,
                                   top=level)  # fmt: skip
    if jumps:
        return tuple(repaint_moves(timesteps, request.jump_length, request.jump_n_sample))
    return tuple(descent(timesteps))


def moves_of(job: Job, schedule: NoiseSchedule) -> tuple[Move, ...]:
    """The moves of a job's run, counted without running anything: its call plan, or for a
    fork its parent's taken up at its step (fork_moves)."""
    if job.fork is None:
        return call_plan(job.request, schedule, job.jumps).moves
    parent = job.fork.parent
    return fork_moves(moves_of(parent, schedule), parent.request, job.fork.at_step, job.request,
                      schedule, job.jumps)  # fmt: skip


def level_at(moves: tuple[Move, ...], position: int) -> int:
    """The timestep x is at after `position` moves (-1: the clean image)."""
    return moves[position][0] if position < len(moves) else -1


def position_after(moves: tuple[Move, ...], calls_done: int) -> int:
    """The moves done once `calls_done` network calls are (0 for none)."""
    downs = [k + 1 for k, (t, t_next) in enumerate(moves) if t_next < t]
    return downs[calls_done - 1] if calls_done else 0


def steps_left(moves: tuple[Move, ...], calls_done: int) -> int:
    """The timesteps of a run's moves from the level x is at after `calls_done` calls down:
    the steps a fork there takes to go on as the run does (RePaint's jumps included)."""
    level = level_at(moves, position_after(moves, calls_done))
    return len({t for t, t_next in moves if t_next < t and t <= level})
