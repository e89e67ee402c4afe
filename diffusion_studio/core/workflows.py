"""Workflows as lists of jobs and a combine step: a table of settings swept over one base
request (sample's class and scale grids, eval's rows, a compare from one x_T), and what
combines a compare's results (the distance of each cell to a reference, the labelled grid).

A table is rows by columns, each a label and the settings it changes; every cell is the base
request with its row's and its column's settings. Settings its sampler does not read are left
at their defaults, and a row that then repeats an earlier one is dropped (DDPM has no eta: a
sweep of samplers by eta gives it one row). A fork is a Job too (Job.forked): its record
names its parent and its step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.info import ClassifierInfo, ModelInfo
from diffusion_studio.core.job import Cell, Job
from diffusion_studio.core.request import SAMPLERS, SampleRequest

if TYPE_CHECKING:
    from diffusion_studio.core.write import Output

Settings = Mapping[str, Any]
Entry = tuple[str, Settings]
"""A row or a column of a table: its label, and the request fields it sets."""

# the axes a compare sweeps: name -> (request field, label of a value, name for a person)
AXES: dict[str, tuple[str, str, str]] = {
    "sampler": ("sampler", "{}", "Sampler"),
    "steps": ("num_inference_steps", "S={}", "Steps"),
    "eta": ("eta", "eta={:g}", "Eta"),
    "spacing": ("timestep_spacing", "{}", "Spacing"),
    "guidance": ("guidance_scale", "cfg={:g}", "Guidance"),
    "classifier_scale": ("classifier_scale", "cg={:g}", "Classifier scale"),
    "variance": ("variance_type", "{}", "Variance"),
}
_DEFAULTS = SampleRequest()


@dataclass(frozen=True)
class Axis:
    """One swept setting: its name (a key of AXES) and its values."""

    name: str
    values: tuple[Any, ...]

    def entries(self) -> list[Entry]:
        field, label, _ = AXES[self.name]
        shown = [SAMPLERS[v].label if self.name == "sampler" else v for v in self.values]
        return [(label.format(s), {field: v}) for s, v in zip(shown, self.values)]


def product(axes: Sequence[Axis]) -> list[Entry]:
    """The entries of several axes crossed (one empty entry for none): labels joined."""
    entries: list[Entry] = [("", {})]
    for axis in axes:
        entries = [
            (", ".join(t for t in (label, more) if t), {**settings, **changes})
            for label, settings in entries
            for more, changes in axis.entries()
        ]
    return entries


@dataclass(frozen=True)
class Table:
    """A workflow's cells: the base request crossed with rows and columns (see the module)."""

    workflow: str
    rows: tuple[Entry, ...]
    columns: tuple[Entry, ...]
    cells: tuple[tuple[Cell, SampleRequest], ...]

    @property
    def row_labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.rows)

    @property
    def column_labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.columns)


def sweep(
    workflow: str,
    base: SampleRequest,
    rows: Sequence[Entry] = (("", {}),),
    columns: Sequence[Entry] = (("", {}),),
    max_cells: int = 10_000,
) -> Table:
    """The table of `base` by `rows` and `columns`. A setting the cell's sampler does not read
    goes back to its default (and out of the row's label); a row equal to an earlier one, cell
    by cell, is dropped. InputError for more than `max_cells` cells."""
    if len(rows) * len(columns) > max_cells:
        raise InputError(
            f"{len(rows)} x {len(columns)} = {len(rows) * len(columns):,} settings; "
            f"the most is {max_cells:,}"
        )
    kept_rows: list[Entry] = []
    cells: list[tuple[Cell, SampleRequest]] = []
    seen: set[tuple] = set()
    for row_label, row in rows:
        requests = [applied(base, {**row, **column}) for _, column in columns]
        key = tuple(tuple(sorted(r.to_dict().items(), key=str)) for r in requests)
        if key in seen:
            continue
        seen.add(key)
        label = _label_of(row_label, row, requests[0])
        r = len(kept_rows)
        kept_rows.append((label, row))
        for c, ((column_label, _), request) in enumerate(zip(columns, requests)):
            cells.append((Cell(workflow, r, c, label, column_label), request))
    return Table(workflow, tuple(kept_rows), tuple(columns), tuple(cells))


def applied(base: SampleRequest, settings: Settings) -> SampleRequest:
    """`base` with `settings`, the options its sampler then does not read at their defaults."""
    request = dataclasses.replace(base, **settings)
    unread = {"eta", "use_clipped_model_output", "variance_type"} - set(request.spec.options)
    return dataclasses.replace(request, **{k: getattr(_DEFAULTS, k) for k in unread})


def _label_of(label: str, settings: Settings, request: SampleRequest) -> str:
    """The row's label without the parts its sampler does not read (DDPM's eta)."""
    unread = {"eta", "use_clipped_model_output", "variance_type"} - set(request.spec.options)
    if not unread & set(settings):
        return label
    kept = {k: v for k, v in settings.items() if k not in unread}
    parts = []
    for name, (field, form, _) in AXES.items():
        if field in kept:
            value = kept[field]
            parts.append(form.format(SAMPLERS[value].label if name == "sampler" else value))
    return ", ".join(parts)


# --- combining a compare --------------------------------------------------------------------


def comparison_outputs(
    comparison: Comparison,
    folder: Path,
    images: Sequence[np.ndarray] | None = None,
    grid: Path | bool = True,
) -> list[Output]:
    """The files of a comparison: each job's PNG (RUN-rRcC-SEED.png, RUN the next run number
    of `folder`) and the labelled grid (`grid`, or RUN-compare.png), its rows and columns
    named, each cell's distance to the reference under it (from `images`, one per job; none
    yet when the files are planned before the run). The reference, when it is no cell, is a
    last row of its own."""
    from diffusion_studio.core.record import next_run_number
    from diffusion_studio.core.write import GridFile, GridLabels, plan_outputs

    first = next_run_number(folder)
    outputs: list[Output] = []
    for k, job in enumerate(comparison.jobs):
        cell = job.cell
        stem = f"{first:05d}-r{cell.row}c{cell.column}" if cell else f"{first:05d}-{k}"
        outputs += plan_outputs(job, folder, stem, run=k)
    if grid:
        table = comparison.table
        extra = comparison.jobs[-1].cell if comparison.extra else None
        rows = table.row_labels + ((extra.column_label,) if extra else ())
        notes = comparison.notes(images) if images is not None else []
        labels = GridLabels(rows, table.column_labels, tuple(notes))
        path = grid if isinstance(grid, Path) else folder / f"{first:05d}-compare.png"
        runs = tuple(range(len(comparison.jobs)))
        outputs.append(GridFile(path, len(table.columns), labels, runs))
    return outputs


def rms(image: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square difference of two uint8 images, in pixel values (0 to 255)."""
    difference = image.astype(np.float64) - reference.astype(np.float64)
    return math.sqrt(float(np.mean(difference**2)))


def reference_request(base: SampleRequest, num_train_timesteps: int) -> SampleRequest:
    """A compare's default reference: DDIM with eta 0 at every training step (at most 1,000),
    the base's other settings, from the same x_T."""
    steps = min(1000, num_train_timesteps)
    return applied(base, {"sampler": "ddim", "eta": 0.0, "num_inference_steps": steps})


@dataclass(frozen=True, eq=False)
class Comparison:
    """A compare: its table, a job per cell (in the table's order), and the job whose image
    every cell is measured against (a cell's, or one more job after the cells)."""

    table: Table
    jobs: tuple[Job, ...]
    reference: int

    @property
    def cells(self) -> int:
        return len(self.table.cells)

    @property
    def extra(self) -> bool:
        """Whether the default reference is a job of its own, after the cells."""
        return len(self.jobs) > self.cells

    def distances(self, images: Sequence[np.ndarray]) -> list[float]:
        """Each job's RMS to the reference, in pixel values (`images`: one per job)."""
        return [rms(image, images[self.reference]) for image in images]

    def notes(self, images: Sequence[np.ndarray]) -> list[str]:
        return [
            "reference" if k == self.reference else f"RMS {d:.1f}"
            for k, d in enumerate(self.distances(images))
        ]


def compare(
    table: Table,
    model: ModelInfo,
    num_train_timesteps: int,
    *,
    classifier: ClassifierInfo | None = None,
    reference: tuple[int, int] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Comparison:
    """The jobs of a compare, all from one x_T (one seed), and its reference: the cell at
    `reference` (row, column), or else DDIM with eta 0 at every training step (reference_request),
    a cell when the table has it, one more job when not. `inputs`: Job.prepare's image and mask
    keywords, for a compare of inpaintings."""
    inputs = dict(inputs or {})
    jobs = [
        dataclasses.replace(Job.prepare(request, model, classifier=classifier, **inputs), cell=cell)
        for cell, request in table.cells
    ]
    places = [(cell.row, cell.column) for cell, _ in table.cells]
    if reference is not None:
        if reference not in places:
            raise InputError(
                f"the reference cell {reference[0]},{reference[1]} is not in the table of "
                f"{len(table.rows)} rows and {len(table.columns)} columns (counted from 0)"
            )
        return Comparison(table, tuple(jobs), places.index(reference))
    base = table.cells[0][1]
    wanted = reference_request(base, num_train_timesteps)
    for k, (_, request) in enumerate(table.cells):
        if request == wanted:
            return Comparison(table, tuple(jobs), k)
    label = f"{SAMPLERS[wanted.sampler].label} eta=0, S={wanted.num_inference_steps}"
    cell = Cell(table.workflow, len(table.rows), 0, "reference", label)
    extra = Job.prepare(wanted, model, classifier=classifier, **inputs)
    return Comparison(table, (*jobs, dataclasses.replace(extra, cell=cell)), len(jobs))


def parse_axis(name: str, text: str) -> tuple[Any, ...]:
    """The values of axis `name` written as a person types them, comma-separated ("10,20,50",
    "ddpm,ddim"): InputError naming the axis for a value that is not one."""
    from diffusion_studio.core.request import TIMESTEP_SPACINGS, VARIANCE_TYPES

    if name not in AXES:
        raise InputError(f"unknown setting {name!r}; use one of {', '.join(AXES)}")
    parts = [part.strip() for part in text.split(",") if part.strip()]
    names = {"sampler": tuple(SAMPLERS), "spacing": TIMESTEP_SPACINGS,
             "variance": VARIANCE_TYPES}  # fmt: skip
    values: list[Any] = []
    for part in parts:
        if name in names:
            if part.lower() not in names[name]:
                raise InputError(f"{part!r} is none of {', '.join(names[name])}")
            values.append(part.lower())
            continue
        try:
            value = int(part) if name == "steps" else float(part)
        except ValueError:
            value = None
        if value is None or not part.isascii() or not math.isfinite(value):
            raise InputError(f"{part!r} is not a number")
        values.append(value)
    if not 1 <= len(values) <= 100:
        raise InputError("takes 1 to 100 values, separated by commas")
    if len(set(values)) != len(values):
        raise InputError("names a value twice")
    return tuple(values)


def axes_from(values: Mapping[str, Sequence[Any]]) -> list[Axis]:
    """The axes of the settings given several values (in AXES' order)."""
    return [Axis(name, tuple(values[name])) for name in AXES if len(values.get(name, ())) > 1]


def split_axes(axes: Sequence[Axis], columns: str | None) -> tuple[list[Axis], list[Axis]]:
    """Rows and columns of a compare: `columns` names the axis of the columns (default steps
    when it is swept, else the last axis); the others, crossed, make the rows."""
    names = [a.name for a in axes]
    if columns is not None and columns not in names:
        raise InputError(f"--columns {columns}: that setting is not swept (give it several values)")
    chosen = columns or ("steps" if "steps" in names else (names[-1] if names else None))
    return [a for a in axes if a.name != chosen], [a for a in axes if a.name == chosen]
