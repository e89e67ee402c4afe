"""The inference thread: it runs core.run.execute off the GUI thread and hands frames over.

One long-lived QThread holds a worker QObject; a run is a queued call to its slot. The worker
composes the display grids of each frame, keeps only the latest in a mailbox and tells the GUI
"latest frame wins": it emits an argument-less signal only when the GUI has taken the previous
one, so a fast sampler never floods the event queue; the GUI draws at most at screen rate.
Cancel is a threading.Event made for each job when Run is pressed, checked between two network
calls (a queued slot could not run while the loop holds the worker thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import make_grid
from diffusion_studio.core.job import Job
from diffusion_studio.core.result import Frame

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier
    from diffusion_studio.core.model import DiffusionModel
    from diffusion_studio.core.plan import Start


def execute(*args, **kwargs):
    """core.run.execute, imported with the first run: torch comes with the model, not with
    the window."""
    from diffusion_studio.core.run import execute as run_job

    return run_job(*args, **kwargs)


SCREEN_INTERVAL_S = 1 / 60  # frames reach the widgets at most this often
# Linux: the inference thread's nice value, the GUI thread's being 0: the lowest, as background
# jobs take (10 left gaps over a 60 Hz frame in some runs on 2 cores; benchmarks/
# gui_responsiveness.py). It yields to any busy program at 0 too, and has every idle core.
INFERENCE_NICE = 19


def yield_to_the_window() -> None:
    """Lower the calling thread below the GUI thread: on Linux its nice value (per thread),
    which the threads it starts, torch's OpenMP pool, inherit. On a machine of few cores the
    GUI thread then gets a core as soon as it wakes, and a frame's drawing does not wait
    behind the network (the largest gap of benchmarks/gui_responsiveness.py, 2 cores: about
    40 ms without it); when the window is idle the run has every core."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INFERENCE_NICE)


@dataclass(frozen=True, eq=False)
class Shown:
    """A frame as the live view draws it: the batch's x_t and x_0 already composed as grids;
    `job`, the index of its job in the queue (a frame may reach the GUI after the next job has
    begun)."""

    frame: Frame
    x_t: np.ndarray
    x0_pred: np.ndarray
    job: int = 0


def compose(frame: Frame, image: int | None = None) -> Shown:
    """The display grids of a frame (of the batch, or of image `image` alone)."""
    x_t, x0 = frame.x_t, frame.x0_pred
    if image is not None:
        x_t, x0 = x_t[image : image + 1], x0[image : image + 1]
    columns = int(np.ceil(np.sqrt(len(x_t))))
    return Shown(frame, make_grid(x_t, columns=columns), make_grid(x0, columns=columns))


@dataclass(frozen=True, eq=False)
class Order:
    """Runs as the GUI hands them to the worker: the model, a queue of jobs run one after
    the other under one cancel event, the guiding classifier (the jobs', or None), and the
    state the first job (a fork) starts from, when its parent's trajectory kept it."""

    model: DiffusionModel
    jobs: tuple[Job, ...]
    cancel: threading.Event
    classifier: Classifier | None = None
    at: Start | None = None


class SamplingWorker(QObject):
    """Lives in the inference thread. Only `run` executes there; the rest is thread-safe."""

    frame_ready = Signal()  # a new latest frame is waiting in take_frame()
    job_started = Signal(int)  # the index of the job of the queue that starts
    finished = Signal(object)  # RunResult, one per job
    done = Signal()  # the queue is through
    failed = Signal(str)
    cancelled = Signal(int)  # the number of network calls done in the job cancelled

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._latest: Shown | None = None

    def take_frame(self) -> Shown | None:
        with self._lock:
            shown, self._latest = self._latest, None
            return shown

    def _offer(self, frame: Frame, job: int) -> None:
        shown = dataclasses.replace(compose(frame), job=job)
        with self._lock:
            waiting = self._latest is not None
            self._latest = shown
        if not waiting:  # the GUI has taken the last one: tell it there is a new one
            self.frame_ready.emit()

    @Slot(object)
    def run(self, order: Order) -> None:
        yield_to_the_window()  # before the run's torch threads start: they inherit it
        for index in range(len(order.jobs)):
            self.job_started.emit(index)
            if not self._run_one(order, index, order.at if index == 0 else None):
                return
        self.done.emit()

    def _run_one(self, order: Order, index: int, at: Start | None) -> bool:
        """Run job `index` of the queue; False when the queue stops (failed or cancelled)."""
        import torch  # loaded with the model, before any run

        done, job = [0], order.jobs[index]

        def on_frame(frame: Frame) -> None:
            done[0] = frame.index + 1
            self._offer(frame, index)

        try:
            result = execute(
                order.model,
                job,
                on_frame=on_frame,
                cancel=order.cancel,
                classifier=order.classifier,
                at=at,
            )
        except InputError as exc:
            self.failed.emit(str(exc))
            return False
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.failed.emit(
                f"out of memory on {order.model.device}: lower the batch size, or run on the CPU"
            )
            return False
        except Exception as exc:  # any failure must reach the window, or it waits forever
            self.failed.emit(f"the run failed: {type(exc).__name__}: {exc}")
            return False
        if result is None:
            self.cancelled.emit(done[0])
            return False
        self.finished.emit(result)
        return True


class Sampler(QObject):
    """The GUI thread's handle on the inference thread: start, cancel, shut down.

    Its signals are emitted on the GUI thread (worker signals are relayed through bound slots
    of this object), so widgets and tests can connect to them directly.
    """

    instances: ClassVar[weakref.WeakSet[Sampler]] = weakref.WeakSet()  # tests check they stop

    started = Signal(object)  # Job: each job of the queue as it starts
    frame = Signal(object)  # Shown
    progress = Signal(int, int, float)  # network calls done, total, calls per second
    finished = Signal(object)  # RunResult: each job's, as it ends
    queue_done = Signal()  # the last job of the queue has ended
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
        self._worker.job_started.connect(self._on_job_started)
        self._worker.done.connect(self._on_done)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start(QThread.Priority.LowPriority)  # where Qt sets it: Windows, macOS
        self._running = False
        self._jobs: tuple[Job, ...] = ()
        self._job = 0
        self._cancel = threading.Event()
        self._run_started = 0.0
        self._last_draw = 0.0
        self._draw_later = QTimer(self, singleShot=True)
        self._draw_later.timeout.connect(self._on_frame_ready)
        self._end_later = QTimer(self, singleShot=True, interval=0)  # see _on_done
        self._end_later.timeout.connect(self._end_queue)
        Sampler.instances.add(self)

    @property
    def running(self) -> bool:
        return self._running

    def start(
        self,
        model: DiffusionModel,
        jobs: Job | Sequence[Job],
        classifier: Classifier | None = None,
        at: Start | None = None,
    ) -> None:
        """Run a job, or a queue of jobs one after the other, on `model` (the first from `at`,
        a fork's kept state); the queue gets its own cancel event, so a Cancel pressed at once,
        before the worker has even started, is not lost, and it stops the whole queue."""
        if self._running:
            raise RuntimeError("a run is already going")
        self._jobs = (jobs,) if isinstance(jobs, Job) else tuple(jobs)
        self._job = 0  # the job of the queue the GUI was told of last
        self._cancel = threading.Event()
        self._set_running(True)
        self._start.emit(Order(model, self._jobs, self._cancel, classifier, at))

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop any run and the thread; True when the thread has ended."""
        self._cancel.set()
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
        self._draw_latest()

    def _draw_latest(self) -> None:
        self._last_draw = time.perf_counter()
        shown = self._worker.take_frame()
        if shown is None or shown.job != self._job:  # the next job's, before its start is told
            return
        frame = shown.frame
        elapsed = time.perf_counter() - self._run_started
        self.frame.emit(shown)
        self.progress.emit(frame.index + 1, frame.total, (frame.index + 1) / max(elapsed, 1e-9))

    @Slot(int)
    def _on_job_started(self, index: int) -> None:
        self._job = index
        self._run_started = time.perf_counter()
        self.started.emit(self._jobs[index])

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self._draw_later.stop()
        self._draw_latest()  # the last frame, if the GUI had not drawn it yet
        self.finished.emit(result)

    @Slot()
    def _on_done(self) -> None:
        """The queue's end comes a turn of the event loop after its last result: what the
        window redraws for each (the gallery's new images; the panel's fields enabled again)
        is then two short pauses, not one long one."""
        self._end_later.start()

    def _end_queue(self) -> None:
        self._set_running(False)
        self.queue_done.emit()

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
