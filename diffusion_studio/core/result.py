"""What a run leaves: its frames (uint8, ready to draw, with the state a fork needs where
kept), the memory-budgeted trajectory of them, and the RunResult. No network: a result
outlives the model that made it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diffusion_studio.core.job import Job
from diffusion_studio.core.limits import TRAJECTORY_BUDGET_BYTES

if TYPE_CHECKING:
    from diffusion_studio.core.plan import Start


@dataclass(frozen=True, eq=False)
class Frame:
    """One network call, ready to draw: the batch's x_t and predicted x_0, (N, H, W, C) uint8;
    with `start` the state to fork the run from here (execute's rule: START_BUDGET_BYTES)."""

    index: int
    total: int
    timestep: int
    x_t: np.ndarray
    x0_pred: np.ndarray
    guidance: float | None = None  # RMS of classifier guidance's s grad log p at this call
    start: Start | None = None

    @property
    def nbytes(self) -> int:
        kept = self.start.nbytes if self.start is not None else 0
        return self.x_t.nbytes + self.x0_pred.nbytes + kept


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
