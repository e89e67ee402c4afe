"""Outpainting that grows the picture past the model's size: a side extended by a fraction of
the model's size, or the picture zoomed out (shrunk into the centre, its border generated),
again and again, on a canvas larger than the model.

A canvas is an image and the pixels of it that are known. A growth makes the canvas larger
(or shrinks its picture) and leaves the new pixels unknown; windows of the model's size then
fill them, in one of two ways:

- "passes": one window after the other, each an inpainting of its own (RePaint, or DDNM's
  projection) whose known pixels are those the canvas has by then, the window with the most
  known pixels first. Only a window's unknown pixels are pasted, so every pass keeps what
  exists exactly, and each is conditioned on its overlap with it.
- "multidiffusion": the whole grown canvas denoised at once (Bar-Tal et al. 2023), every
  window's network output averaged where windows overlap (sampling.tiled), the known pixels
  merged on the whole canvas. Consecutive extensions are one run.

Pass k of an outpainting draws its noise from the request's seed + k, so the record (the
starting picture, the growths, the method and the request) makes the same canvas again.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from diffusion_studio.core.canvas import Canvas, Growth, grown_size
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import parse_metadata, read_attachment, read_png_texts, save_png
from diffusion_studio.core.info import ModelInfo
from diffusion_studio.core.job import Job, Restore, resolved
from diffusion_studio.core.record import image_attachment, parameters_text, png_bytes
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.result import Frame, RunResult

if TYPE_CHECKING:
    from diffusion_studio.core.model import DiffusionModel

METHODS = ("multidiffusion", "passes")  # the default first: scripts/measure_outpaint.py
Method = Literal["passes", "multidiffusion"]
MAX_GROWTHS = 64
RECORD_NAME = "outpaint"  # the attachment of a stitched PNG that holds its record


@dataclass(frozen=True, eq=False)
class Outpaint:
    """An outpainting: the request (pass k draws from its seed + k; one image), the model,
    the starting picture (H, W, C) uint8 at least the model's size, the growths in order, the
    method and how the known pixels are kept ("repaint", or "ddnm": DDNM's projection)."""

    request: SampleRequest
    model: ModelInfo
    picture: np.ndarray
    growths: tuple[Growth, ...]
    method: Method = "multidiffusion"
    consistency: Literal["repaint", "ddnm"] = "repaint"

    def check(self) -> None:
        if not self.growths:
            raise InputError("an outpainting needs a side to extend or a zoom-out")
        if len(self.growths) > MAX_GROWTHS:
            raise InputError(f"at most {MAX_GROWTHS} passes, got {len(self.growths)}")
        if self.method not in METHODS:
            raise InputError(f"the method is {' or '.join(METHODS)}, got {self.method!r}")
        if self.consistency not in ("repaint", "ddnm"):
            raise InputError(f"the consistency is repaint or ddnm, got {self.consistency!r}")
        if self.request.batch_size != 1:
            raise InputError("an outpainting grows one picture: leave -n out")
        for growth in self.growths:
            growth.check()
        _ = self.size  # a canvas too large is said now

    @property
    def size(self) -> tuple[int, int]:
        """The (height, width) of the stitched canvas."""
        size = self.picture.shape[:2]
        for growth in self.growths:
            size = grown_size(size, growth, self.model.resolution)
        return size

    def groups(self) -> list[tuple[Growth, ...]]:
        """The growths as runs: each its own for passes; for MultiDiffusion an extension
        joined to the extension before it is in that one's run."""
        groups: list[list[Growth]] = []
        for growth in self.growths:
            joins = growth.joined and growth.kind == "extend" and self.method == "multidiffusion"
            if groups and joins and groups[-1][-1].kind == "extend":
                groups[-1].append(growth)
            else:
                groups.append([growth])
        return [tuple(g) for g in groups]

    def to_dict(self) -> dict[str, Any]:
        return {
            "growths": [g.to_dict() for g in self.growths],
            "method": self.method,
            "consistency": self.consistency,
            "request": self.request.to_dict(),
            "model": self.model.name,
            "model_hash": self.model.short_hash,
        }


@dataclass(frozen=True, eq=False)
class Outpainting:
    """A finished outpainting: the stitched canvas (H, W, C) uint8, the job and result of
    every pass, and which pass made each pixel (H, W) int (-1: the picture)."""

    outpaint: Outpaint
    image: np.ndarray
    jobs: tuple[Job, ...]
    results: tuple[RunResult, ...]
    made_by: np.ndarray

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)


class Growing:
    """An outpainting as it goes, pass by pass, for the command line and the window alike:
    `next_job` is the job of the next pass (None when the canvas is whole), `take` pastes
    its result into the canvas. A pass's job is an inpainting of a window of the model's size
    (passes), or of the whole canvas by windows (MultiDiffusion)."""

    def __init__(self, outpaint: Outpaint) -> None:
        outpaint.check()
        self.outpaint = dataclasses.replace(  # its record says what its passes ran in
            outpaint, request=resolved(outpaint.request, outpaint.model)
        )
        self.canvas = Canvas(outpaint.picture, np.ones(outpaint.picture.shape[:2], bool))
        self.made_by = np.full(self.canvas.size, -1)
        self.jobs: list[Job] = []
        self.results: list[RunResult] = []
        self._groups_done = 0
        self._window: tuple[int, int] | None = None

    @property
    def window(self) -> tuple[int, int] | None:
        """Where the pass `next_job` gave sits on the canvas (top, left); None between passes."""
        return self._window

    def add(self, growth: Growth) -> None:
        """One more growth after those of the outpainting (the window's next press), in a run
        of its own."""
        growths = (*self.outpaint.growths, dataclasses.replace(growth, joined=False))
        grown = dataclasses.replace(self.outpaint, growths=growths)
        grown.check()
        self.outpaint = grown

    def copy(self) -> Growing:
        """This outpainting as it stands, to go back to (a pass cancelled, an undo)."""
        twin = copy.copy(self)
        twin.jobs, twin.results = list(self.jobs), list(self.results)
        return twin

    def next_job(self) -> Job | None:
        """The next pass's job; None when every growth is filled."""
        model, size = self.outpaint.model, self.outpaint.model.resolution
        if self.canvas.known.all():
            groups = self.outpaint.groups()
            if self._groups_done >= len(groups):
                return None
            group = groups[self._groups_done]
            self._groups_done += 1
            for growth in group:
                self._grow(growth, size)
        request = dataclasses.replace(self.outpaint.request, seed=self.outpaint.request.seed
                                      + len(self.jobs))  # fmt: skip
        restore = Restore("mask") if self.outpaint.consistency == "ddnm" else None
        if self.outpaint.method == "multidiffusion":
            windows = tuple(self.canvas.windows(size, 4))
            self._window = (0, 0)
            job = Job(request, model, self.canvas.image, ~self.canvas.known, restore=restore,
                      windows=windows)  # fmt: skip
        else:
            windows = self.canvas.windows(size, 2)
            self._window = max(windows, key=lambda w: int(self.canvas.crop(w, size).known.sum()))
            crop = self.canvas.crop(self._window, size)
            job = Job(request, model, crop.image.copy(), ~crop.known, restore=restore)
        self.jobs.append(job)
        return job

    def _grow(self, growth: Growth, size: tuple[int, int]) -> None:
        before = self.canvas
        self.canvas = before.grown(growth, size)
        if growth.kind == "zoom_out":  # what was made before is now the picture, shrunk
            self.made_by = np.where(self.canvas.known, -1, -2)
            return
        (height, width), (grown_h, grown_w) = before.size, self.canvas.size
        top = grown_h - height if growth.side == "top" else 0
        left = grown_w - width if growth.side == "left" else 0
        made_by = np.full(self.canvas.size, -2)
        made_by[top : top + height, left : left + width] = self.made_by
        self.made_by = made_by

    def take(self, result: RunResult) -> None:
        """Paste the result of the pass `next_job` gave into the canvas: its unknown pixels
        only, so what existed stays exactly as it was."""
        if self._window is None or result.job is not self.jobs[-1]:
            raise ValueError("a result to take is the last job's, once")
        fresh_before = ~self.canvas.known
        self.canvas = self.canvas.pasted(self._window, result.images[0])
        self.made_by[fresh_before & self.canvas.known] = len(self.jobs) - 1
        self.results.append(result)
        self._window = None

    def result(self) -> Outpainting:
        if not self.canvas.known.all() or self._window is not None:
            raise ValueError("the outpainting is not finished")
        return Outpainting(self.outpaint, self.canvas.image, tuple(self.jobs),
                           tuple(self.results), self.made_by)  # fmt: skip


def outpaint(
    model: DiffusionModel,
    job: Outpaint,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    cancel: threading.Event | None = None,
) -> Outpainting | None:
    """Run an outpainting pass by pass to its stitched canvas; None if `cancel` was set."""
    from diffusion_studio.core.run import execute

    growing = Growing(job)
    while (pass_job := growing.next_job()) is not None:
        result = execute(model, pass_job, on_frame=on_frame, cancel=cancel)
        if result is None:
            return None
        growing.take(result)
    return growing.result()


# --- the record of a stitched canvas --------------------------------------------------------


def save_outpainting(done: Outpainting, path: str | Path, overwrite: bool = False) -> Path:
    """The stitched canvas as a PNG with the record of its passes (the starting picture, the
    growths, the method, the request: `read_outpaint` makes the same canvas again)."""
    from diffusion_studio import __version__

    job = done.outpaint
    record = {**job.to_dict(), "version": __version__, "size": list(done.image.shape[:2]),
              "passes": len(done.jobs)}  # fmt: skip
    growths = ", ".join(g.describe() for g in job.growths)
    text = parameters_text(job.request, job.model, True, None)
    text += f", Outpaint: {growths}, Outpaint method: {job.method}, Passes: {len(done.jobs)}"
    attachments = {RECORD_NAME: json.dumps(record, sort_keys=True).encode(),
                   "picture": png_bytes(job.picture)}  # fmt: skip
    return save_png(path, done.image, parameters=text, attachments=attachments,
                    overwrite=overwrite)  # fmt: skip


def read_outpaint(path: str | Path, model: ModelInfo) -> Outpaint | None:
    """The outpainting a stitched PNG records, for `model` (InputError when it was another);
    None for a PNG without one. A damaged or hostile record is one InputError naming the
    file."""
    texts = read_png_texts(path)
    try:
        data = read_attachment(texts, RECORD_NAME)
        if data is None:
            return None
        record = parse_metadata(data.decode("utf-8", errors="replace"))
        return _outpaint_from(record, texts, model)
    except InputError as exc:
        raise InputError(f"the outpainting in {Path(path).name} is unreadable: {exc}") from None


def _outpaint_from(record: dict[str, Any], texts: dict[str, str], model: ModelInfo) -> Outpaint:
    growths = record.get("growths")
    if not isinstance(growths, list) or not 0 < len(growths) <= MAX_GROWTHS:
        raise InputError(f"its growths are not a list of 1 to {MAX_GROWTHS}")
    made = []
    for g in growths:
        if not isinstance(g, dict) or not isinstance(g.get("side", ""), str):
            raise InputError("a growth is not an object of a kind, an amount and a side")
        amount = g.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise InputError("a growth's amount is not a number")
        if not isinstance(g.get("joined", False), bool):
            raise InputError("a growth's joined is not true or false")
        made.append(Growth(g.get("kind"), float(amount), g.get("side", ""), g.get("joined", False)))
    digest = record.get("model_hash", "")
    if digest and digest != model.short_hash:
        raise InputError(f"it was made with {record.get('model')!s:.80} [{digest!s:.12}], "
                         f"not {model.name} [{model.short_hash}]")  # fmt: skip
    picture = image_attachment(texts, "picture", None)
    if picture.shape[2] != model.in_channels:
        raise InputError(f"its picture has {picture.shape[2]} channels, the model "
                         f"{model.in_channels}")  # fmt: skip
    request = SampleRequest.from_record(record.get("request"))
    method, consistency = record.get("method"), record.get("consistency", "repaint")
    job = Outpaint(request, model, picture, tuple(made), method, consistency)
    job.check()
    return job
