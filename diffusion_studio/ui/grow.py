"""The window's other tasks: outpainting that grows the picture (the Grow tab, a press at a
time, each press's passes run by the worker one after the other) and the one-run tasks on an
image, Enlarge 2x or 4x past the model's size and Colorize. A mixin of MainWindow, kept apart
for size; the jobs are core's (core.outpaint.Growing, Job.upscale, Job.colorize)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from diffusion_studio.core.canvas import Growth, fit_picture
from diffusion_studio.core.checks import validate
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.outpaint import Growing, Outpaint, save_outpainting
from diffusion_studio.core.record import next_run_number
from diffusion_studio.core.result import RunResult
from diffusion_studio.ui.worker import Shown


class GrowMixin:
    """Needs the window's grow_view, tabs, canvas, state, panel, sampler, model, outputs,
    settings, gallery, show_error, clear_error and statusBar."""

    growing: Growing | None = None
    _grow_picture: np.ndarray | None = None  # the picture the growing began with
    _grow_job: Job | None = None  # the pass the worker runs for the Grow tab
    _grow_history: list[Growing | None]

    def _connect_grow(self) -> None:
        self._grow_history = []
        view = self.grow_view
        view.grow_requested.connect(self.grow)
        view.start_requested.connect(self.start_growing)
        view.undo_requested.connect(self.undo_growth)
        view.export_requested.connect(self.export_grown)
        view.method.currentIndexChanged.connect(self._grow_method_changed)
        self.sampler.frame.connect(self._grow_frame)
        self.sampler.finished.connect(self._grow_took)
        self.sampler.queue_done.connect(self._grow_next)
        self.sampler.failed.connect(self._grow_stopped)
        self.sampler.cancelled.connect(self._grow_stopped)
        self.sampler.running_changed.connect(lambda _: self._grow_buttons())
        self.gallery.task_requested.connect(self._gallery_task)
        self._grow_buttons()

    # --- the one-run tasks: Enlarge, Colorize ---------------------------------------------

    def enlarge(self, factor: int, image: np.ndarray | None = None) -> None:
        """Enlarge `image` (default the canvas's source) `factor` times past the model's
        size: DDNM keeps its block averages, MultiDiffusion's windows cover the canvas."""
        self._run_task(lambda request, picture: Job.upscale(
            request, self.model.info, picture, factor, "ddnm", tiled=True), image)  # fmt: skip

    def colorize(self, image: np.ndarray | None = None) -> None:
        """Colour `image` (default the canvas's source); its luminance is kept (DDNM)."""
        self._run_task(
            lambda request, picture: Job.colorize(request, self.model.info, picture), image
        )

    def _run_task(self, make, image: np.ndarray | None) -> None:
        if self.sampler.running:
            return
        if self.model is None:
            self.show_error("Open a model folder first (File > Open model folder).")
            return
        picture = self.state.source if image is None else image
        if picture is None:
            self.show_error("Open an image first (File > Open image), or pick a result in the "
                            "gallery (right-click).")  # fmt: skip
            return
        try:
            request = dataclasses.replace(self.panel.request_for_run(), batch_size=1)
            job = make(request, picture)
            validate(job.request, self.model, job.jumps, None)
        except InputError as exc:
            self.show_error(str(exc))
            return
        self.clear_error()
        self.tabs.setCurrentIndex(0)
        self.sampler.start(self.model, job)

    def _gallery_task(self, entry, task: str) -> None:
        if task == "grow":
            self.start_growing(entry.image)
        elif task == "colorize":
            self.colorize(entry.image)
        else:
            self.enlarge(int(task.removeprefix("enlarge")), entry.image)

    # --- the Grow tab -----------------------------------------------------------------------

    def start_growing(self, image: np.ndarray | None = None) -> None:
        """Begin a new picture to grow: `image`, or the canvas's source."""
        if self.sampler.running:
            return
        picture = self.state.source if image is None else image
        if picture is None or self.model is None:
            self.show_error("Open an image on the Studio tab first (File > Open image), then "
                            "grow it on the Grow tab.")  # fmt: skip
            return
        try:
            self._grow_picture, _ = fit_picture(picture, self.model.info)
        except InputError as exc:
            self.show_error(str(exc))
            return
        self.growing, self._grow_history = None, []
        self.tabs.setCurrentWidget(self.grow_view)
        self.grow_view.show_canvas(self._grow_picture)
        height, width = self._grow_picture.shape[:2]
        self.grow_view.status.setText(f"{width}x{height}: press a side to extend it, or Zoom "
                                      "out.")  # fmt: skip
        self._grow_buttons()

    def grow(self, growth: Growth) -> None:
        """One press: the growth added to the picture, its passes run one after the other."""
        if self.sampler.running:
            return
        if self.growing is None and self._grow_picture is None:
            self.start_growing()
            if self._grow_picture is None:
                return
        before = self.growing.copy() if self.growing is not None else None
        try:
            if self.growing is None:
                request = dataclasses.replace(self.panel.request_for_run(), batch_size=1)
                method = self.grow_view.method.currentData()
                outpaint = Outpaint(request, self.model.info, self._grow_picture, (growth,), method)
                growing = Growing(outpaint)
            else:
                growing = self.growing
                growing.add(growth)
            validate(growing.outpaint.request, self.model, True)
        except InputError as exc:
            self.growing = before
            self.show_error(str(exc))
            return
        self.clear_error()
        self.growing = growing
        self._grow_history.append(before)
        self._grow_pass()

    def _grow_pass(self) -> None:
        job = self.growing.next_job() if self.growing is not None else None
        self._grow_job = job
        if job is None:
            self._grow_done()
            return
        self.sampler.start(self.model, job)
        passes = len(self.growing.jobs)
        self.grow_view.status.setText(f"Pass {passes}: {job.shape[1]}x{job.shape[0]} "
                                      f"{'canvas' if job.windows else 'window'}...")  # fmt: skip

    def owns(self, result: RunResult) -> bool:
        """Whether a finished run is a pass of the Grow tab's (not a result of its own)."""
        return self._grow_job is not None and result.job is self._grow_job

    def _grow_frame(self, shown: Shown) -> None:
        growing = self.growing
        if self._grow_job is None or growing is None or growing.window is None:
            return
        preview = growing.canvas.pasted(growing.window, shown.frame.x0_pred[0])
        self.grow_view.show_canvas(preview.image, preview.known)

    def _grow_took(self, result: RunResult) -> None:
        if self.owns(result):
            self.growing.take(result)
            self.grow_view.show_canvas(self.growing.canvas.image, self.growing.canvas.known)

    def _grow_next(self) -> None:
        if self._grow_job is not None:
            self._grow_pass()

    def _grow_stopped(self, *_: object) -> None:
        """A pass failed or was cancelled: the picture as it was before the press."""
        if self._grow_job is None:
            return
        self._grow_job = None
        self.growing = self._grow_history.pop() if self._grow_history else None
        picture = self.growing.canvas.image if self.growing else self._grow_picture
        self.grow_view.show_canvas(picture)
        self.grow_view.status.setText("Stopped: the picture is as it was before the press.")
        self._grow_buttons()

    def _grow_done(self) -> None:
        done = self.growing.result()
        height, width = done.image.shape[:2]
        text = f"{width}x{height} in {len(done.jobs)} passes, {done.seconds:.1f} s"
        if self.outputs is not None and self.outputs.enabled:
            try:
                folder = self.outputs.today()
                path = folder / f"{next_run_number(folder):05d}-{done.outpaint.request.seed}.png"
                save_outpainting(done, path)
                text += f"; saved as {path.name} in {folder}"
            except (InputError, OSError) as exc:
                self.show_error(f"Could not write the grown picture: {exc}; use Export...")
        self.grow_view.status.setText(text)
        self._grow_buttons()

    def undo_growth(self) -> None:
        if self.sampler.running or not self._grow_history:
            return
        self.growing = self._grow_history.pop()
        picture = self.growing.canvas.image if self.growing else self._grow_picture
        self.grow_view.show_canvas(picture)
        self.grow_view.status.setText(f"{picture.shape[1]}x{picture.shape[0]}")
        self._grow_buttons()

    def _grow_method_changed(self) -> None:
        """The method is the whole picture's (its record has one): a new one starts over from
        the picture the growing began with."""
        if self.growing is not None:
            self.growing, self._grow_history = None, []
            self.grow_view.show_canvas(self._grow_picture)
            self.grow_view.status.setText("Another way to fill: the picture starts over.")
            self._grow_buttons()

    def export_grown(self) -> None:
        if self.growing is None or self._grow_job is not None:
            return
        done = self.growing.result()
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the grown picture", self.settings.value("folders/export", ""),
            "PNG (*.png)",
        )  # fmt: skip
        if not path:
            return
        path = Path(path).with_suffix(".png") if Path(path).suffix.lower() != ".png" else path
        self.settings.setValue("folders/export", str(Path(path).parent))
        try:  # the file dialog asked before an existing file is replaced
            written = save_outpainting(done, path, overwrite=True)
        except (InputError, OSError) as exc:
            self.show_error(f"Could not export the grown picture: {exc}")
            return
        self.statusBar().showMessage(f"Exported {written}", 8000)

    def _grow_buttons(self) -> None:
        growing = self.growing
        has_picture = growing is not None or self._grow_picture is not None
        finished = bool(
            growing is not None and growing.window is None and growing.canvas.known.all()
        )
        self.grow_view.set_busy(self.sampler.running, has_picture, finished,
                                bool(self._grow_history))  # fmt: skip
