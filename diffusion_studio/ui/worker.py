"""The inference thread: runs the engine's generator off the GUI thread and hands frames over.

One long-lived QThread holds a worker QObject; a run is a queued call to its slot. Frames are
converted to uint8 in the worker, recorded for scrubbing within a memory budget, and handed to
the GUI "latest frame wins": the worker emits an argument-less signal only when the GUI has
taken the previous frame, so a fast sampler never floods the event queue. Cancel is a
threading.Event checked between two network calls (a queued slot could not run while the
loop holds the worker thread).
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.generate import SampleRequest, generate
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.model import DiffusionModel

TRAJECTORY_BUDGET_BYTES = 256 * 1024 * 1024
SCREEN_INTERVAL_S = 1 / 60  # frames reach the widgets at most this often


@dataclass(frozen=True)
class Job:
    """Everything one run needs; source (1, C, H, W) and inpaint_mask (1, 1, H, W) or None."""

    model: DiffusionModel
    request: SampleRequest
    source: torch.Tensor | None = None
    inpaint_mask: torch.Tensor | None = None

    @property
    def inpaint(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class Frame:
    """One network call, ready to draw: the batch's x_t and predicted x_0, (N, H, W, C) uint8."""

    index: int
    total: int
    timestep: int
    x_t: np.ndarray
    x0_pred: np.ndarray


@dataclass
class Trajectory:
    """Every recorded step of a run, within a memory budget: when the frames would exceed it,
    every second one is dropped (the newest is always kept), so a long run stays scrubbable."""

    budget_bytes: int = TRAJECTORY_BUDGET_BYTES
    frames: list[Frame] = field(default_factory=list)
    stride: int = 1

    @property
    def nbytes(self) -> int:
        return sum(f.x_t.nbytes + f.x0_pred.nbytes for f in self.frames)

    def add(self, frame: Frame) -> None:
        if self.frames and frame.index % self.stride and frame.index != frame.total - 1:
            return
        self.frames.append(frame)
        frame_bytes = frame.x_t.nbytes + frame.x0_pred.nbytes
        while len(self.frames) > 2 and len(self.frames) * frame_bytes > self.budget_bytes:
            self.stride *= 2
            last = self.frames[-1]
            self.frames = [f for f in self.frames[:-1] if f.index % self.stride == 0] + [last]


@dataclass(frozen=True)
class RunResult:
    """A finished run: the images (N, H, W, C) uint8 and how they came about."""

    job: Job
    images: np.ndarray
    trajectory: Trajectory
    seconds: float


class SamplingWorker(QObject):
    """Lives in the inference thread. Only `run` executes there; the rest is thread-safe."""

    frame_ready = Signal()  # a new latest frame is waiting in take_frame()
    finished = Signal(object)  # RunResult
    failed = Signal(str)
    cancelled = Signal(int)  # the number of network calls done

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._cancel = threading.Event()

    def request_cancel(self) -> None:
        self._cancel.set()

    def take_frame(self) -> Frame | None:
        with self._lock:
            frame, self._latest = self._latest, None
            return frame

    def _offer(self, frame: Frame) -> None:
        with self._lock:
            waiting = self._latest is not None
            self._latest = frame
        if not waiting:  # the GUI has taken the last one: tell it there is a new one
            self.frame_ready.emit()

    @Slot(object)
    def run(self, job: Job) -> None:
        self._cancel.clear()
        started = time.perf_counter()
        trajectory = Trajectory()
        done = 0
        try:
            steps = generate(job.model, job.request, job.source, job.inpaint_mask)
            with torch.inference_mode():
                for step in steps:
                    x_t, x0_pred = to_uint8(step.x_t), to_uint8(step.x0_pred)
                    frame = Frame(step.index, step.total, step.timestep, x_t, x0_pred)
                    trajectory.add(frame)
                    self._offer(frame)
                    done = step.index + 1
                    if self._cancel.is_set():
                        steps.close()
                        self.cancelled.emit(done)
                        return
        except InputError as exc:
            self.failed.emit(str(exc))
            return
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.failed.emit(
                f"out of memory on {job.model.device}: lower the batch size, or run on the CPU"
            )
            return
        except Exception as exc:  # any failure must reach the window, or it waits forever
            self.failed.emit(f"the run failed: {type(exc).__name__}: {exc}")
            return
        images = trajectory.frames[-1].x_t if trajectory.frames else np.empty((0,))
        self.finished.emit(RunResult(job, images, trajectory, time.perf_counter() - started))


class Sampler(QObject):
    """The GUI thread's handle on the inference thread: start, cancel, shut down.

    Its signals are emitted on the GUI thread (worker signals are relayed through bound slots
    of this object), so widgets and tests can connect to them directly.
    """

    instances: ClassVar[weakref.WeakSet[Sampler]] = weakref.WeakSet()  # tests check they stop

    started = Signal(object)  # Job
    frame = Signal(object)  # Frame
    progress = Signal(int, int, float)  # network calls done, total, calls per second
    finished = Signal(object)  # RunResult
    failed = Signal(str)
    cancelled = Signal(int)
    running_changed = Signal(bool)
    _start = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("inference")
        self._worker = SamplingWorker()
        self._worker.moveToThread(self._thread)
        self._start.connect(self._worker.run)
        self._worker.frame_ready.connect(self._on_frame_ready)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()
        self._running = False
        self._run_started = 0.0
        self._last_draw = 0.0
        self._draw_later = QTimer(self, singleShot=True)
        self._draw_later.timeout.connect(self._on_frame_ready)
        Sampler.instances.add(self)

    @property
    def running(self) -> bool:
        return self._running

    def start(self, job: Job) -> None:
        if self._running:
            raise RuntimeError("a run is already going")
        self._run_started = time.perf_counter()
        self._set_running(True)
        self.started.emit(job)
        self._start.emit(job)

    def cancel(self) -> None:
        self._worker.request_cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop any run and the thread; True when the thread has ended."""
        self._worker.request_cancel()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    def _set_running(self, running: bool) -> None:
        if running != self._running:
            self._running = running
            self.running_changed.emit(running)

    @Slot()
    def _on_frame_ready(self) -> None:
        wait = self._last_draw + SCREEN_INTERVAL_S - time.perf_counter()
        if wait > 0 and self._running:  # faster than the screen: draw the latest frame later
            if not self._draw_later.isActive():
                self._draw_later.start(max(1, round(wait * 1000)))
            return
        self._last_draw = time.perf_counter()
        frame = self._worker.take_frame()
        if frame is None:
            return
        elapsed = time.perf_counter() - self._run_started
        self.frame.emit(frame)
        self.progress.emit(frame.index + 1, frame.total, (frame.index + 1) / max(elapsed, 1e-9))

    @Slot(object)
    def _on_finished(self, result: RunResult) -> None:
        self._draw_later.stop()
        self._set_running(False)
        self._on_frame_ready()  # the last frame, if the GUI had not drawn it yet
        self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._worker.take_frame()
        self._set_running(False)
        self.failed.emit(message)

    @Slot(int)
    def _on_cancelled(self, done: int) -> None:
        self._worker.take_frame()
        self._set_running(False)
        self.cancelled.emit(done)
