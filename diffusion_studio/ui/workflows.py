"""The window's workflows: a compare from one x_T (the Compare tab) and a fork of a finished
run from any of its steps (the live view's Continue from this step). A mixin of MainWindow,
kept apart for size; the jobs are core's (core.workflows, Job.forked), run by the worker's
queue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from diffusion_studio.core.checks import validate
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.moves import moves_of, network_calls, steps_left
from diffusion_studio.core.result import RunResult
from diffusion_studio.core.workflows import (
    AXES,
    Axis,
    Comparison,
    compare,
    comparison_outputs,
    parse_axis,
    product,
    sweep,
)
from diffusion_studio.core.write import write
from diffusion_studio.ui.gallery import GalleryEntry
from diffusion_studio.ui.worker import Shown


class WorkflowsMixin:
    """Needs the window's compare_view, live, gallery, panel, state, sampler, model, settings,
    show_error, clear_error and current_job."""

    comparison: Comparison | None = None
    _compare_results: dict[int, RunResult]
    _running_cell: int | None = None
    _fork_parent: GalleryEntry | None = None
    _inspected: GalleryEntry | None = None

    def _connect_workflows(self) -> None:
        view = self.compare_view
        view.run_requested.connect(self.run_compare)
        view.export_requested.connect(self.export_comparison)
        view.reference_chosen.connect(self.choose_reference)
        view.changed.connect(self.update_compare_cost)
        self.panel.changed.connect(self.update_compare_cost)
        self.sampler.started.connect(self._compare_started)
        self.sampler.frame.connect(self._compare_frame)
        self.sampler.finished.connect(self._compare_finished)
        self.sampler.queue_done.connect(self._compare_done)
        self.live.fork_requested.connect(self.fork_from_here)
        self.live.scrubbed.connect(self._on_scrubbed)

    # --- compare ------------------------------------------------------------------------

    def planned_comparison(self) -> Comparison:
        """The comparison the Compare tab's settings make over the panel's request (its seed,
        class, guidance...) and the canvas's image and mask when it is an inpainting."""
        if self.model is None:
            raise InputError("Open a model folder first.")
        axes = []
        for which, (name, text) in self.compare_view.axes().items():
            try:
                axes.append(Axis(name, parse_axis(name, text)))
            except InputError as exc:
                raise InputError(f"{which.capitalize()}, {AXES[name][2]}: {exc}") from None
        if axes[0].name == axes[1].name:
            raise InputError("the rows and the columns sweep the same setting: choose two")
        job = self.current_job()
        base = dataclasses.replace(job.request, batch_size=1)
        table = sweep("compare", base, product(axes[:1]), product(axes[1:]), max_cells=400)
        inputs = {"image": job.source, "mask": job.mask} if job.inpaint else {}
        guide = self.state.classifier.info if self.state.classifier else None
        return compare(table, self.model.info, self.model.schedule.num_train_timesteps,
                       classifier=guide, inputs=inputs)  # fmt: skip

    def update_compare_cost(self) -> None:
        try:
            comparison = self.planned_comparison()
        except InputError as exc:
            self.compare_view.set_cost(str(exc))
            return
        calls = sum(network_calls(job.request, job.jumps) for job in comparison.jobs)
        extra = " (and the reference)" if comparison.extra else ""
        self.compare_view.set_cost(
            f"{comparison.cells} cells{extra}: {calls:,} network calls, all from one x_T"
        )

    def run_compare(self) -> None:
        if self.sampler.running:
            return
        try:
            comparison = self.planned_comparison()
            for job in comparison.jobs:
                validate(job.request, self.model, job.jumps, self.state.classifier)
        except InputError as exc:
            self.show_error(str(exc))
            return
        self.clear_error()
        self.comparison, self._compare_results = comparison, {}
        table = comparison.table
        titles = [(cell.row, cell.column, "") for cell, _ in table.cells]
        if comparison.extra:
            reference = comparison.jobs[-1].cell
            titles.append((len(table.rows), 0, f"reference: {reference.column_label}"))
        self.compare_view.show_table(table.row_labels, table.column_labels, titles)
        self.sampler.start(self.model, comparison.jobs, self.state.classifier)

    def _compare_started(self, job: Job) -> None:
        jobs = self.comparison.jobs if self.comparison else ()
        self._running_cell = next((k for k, j in enumerate(jobs) if j is job), None)

    def _compare_frame(self, shown: Shown) -> None:
        if self._running_cell is not None and shown.job < len(self.compare_view.cells):
            self.compare_view.show_frame(shown.job, shown)

    def _compare_finished(self, result: RunResult) -> None:
        jobs = self.comparison.jobs if self.comparison else ()
        k = next((k for k, job in enumerate(jobs) if job is result.job), None)
        if self._running_cell is None or k is None:
            return
        self._compare_results[k] = result
        self.compare_view.show_result(k, result.images[0])

    def _compare_done(self) -> None:
        """The queue is through: each cell's distance to the reference."""
        if self.comparison is None or self._running_cell is None:
            return
        self._running_cell = None
        runs = len(self.comparison.jobs)
        if len(self._compare_results) == runs:
            images = [self._compare_results[k].images[0] for k in range(runs)]
            self.compare_view.set_notes(self.comparison.notes(images))
            seconds = sum(r.seconds for r in self._compare_results.values())
            self.statusBar().showMessage(
                f"Compare finished: {runs} runs in {seconds:.1f} s, each cell's RMS to the "
                "reference under it",
                10000,
            )

    def choose_reference(self, k: int) -> None:
        """Measure every cell against cell `k` (the person's choice)."""
        if self.comparison is None or len(self._compare_results) != len(self.comparison.jobs):
            return
        self.comparison = dataclasses.replace(self.comparison, reference=k)
        self._running_cell = -1  # a finished comparison: notes again
        self._compare_done()

    def export_comparison(self) -> None:
        """The whole comparison: each cell's PNG with its record, and the labelled grid."""
        comparison = self.comparison
        if comparison is None or len(self._compare_results) != len(comparison.jobs):
            self.show_error("Nothing to export yet: run the comparison first.")
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Export the comparison to", self.settings.value("folders/export", "")
        )
        if not folder:
            return
        self.settings.setValue("folders/export", folder)
        try:
            ordered = [self._compare_results[k] for k in range(len(comparison.jobs))]
            images = [r.images[0] for r in ordered]
            written = write(comparison_outputs(comparison, Path(folder), images), ordered)
        except (InputError, OSError) as exc:
            self.show_error(f"Could not export the comparison: {exc}")
            return
        self.statusBar().showMessage(f"Exported {len(written)} files to {folder}", 8000)

    # --- fork ---------------------------------------------------------------------------

    def steps_after(self, entry: GalleryEntry, position: int) -> int:
        """The steps a fork of `entry` at frame `position` takes to go on as it did."""
        frame = entry.result.trajectory.frames[position]
        moves = moves_of(entry.result.job.for_image(entry.index), self.model.schedule)
        return steps_left(moves, frame.index + 1)

    def fork_from_here(self, position: int) -> None:
        """Continue the inspected run from frame `position` with the panel's settings."""
        entry = self._inspected
        if self.sampler.running or self.model is None:
            return
        if entry is None or entry.result is None or not entry.result.trajectory.frames:
            self.show_error("Pick a result of this session in the gallery to continue it.")
            return
        frame = entry.result.trajectory.frames[position]
        parent = entry.result.job.for_image(entry.index)
        request = dataclasses.replace(
            self.panel.request(),
            seed=parent.request.seed,
            batch_size=1,
            num_inference_steps=self.live.fork_steps.value(),
        )
        classifier = self.state.classifier.info if self.state.classifier else None
        try:
            job = parent.forked(request, frame.index + 1, classifier)
            validate(job.request, self.model, job.jumps, self.state.classifier)
            moves_of(job, self.model.schedule)  # a count of steps beyond what is left: said now
        except InputError as exc:
            self.show_error(str(exc))
            return
        self.clear_error()
        at = frame.start if entry.result.job.request.batch_size == 1 else None
        self._fork_parent = entry
        self.sampler.start(self.model, job, self.state.classifier, at=at)

    def _on_scrubbed(self, position: int) -> None:
        entry = self._inspected
        if entry is None or entry.result is None or self.model is None:
            return
        frames = entry.result.trajectory.frames
        if position < len(frames) - 1:
            self.live.fork_steps.setValue(self.steps_after(entry, position))
