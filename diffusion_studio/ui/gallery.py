"""The gallery strip: every image of the session as a thumbnail, newest first, and the images
of earlier sessions found in the output folder.

An entry holds its image and its record (request, model, inputs), never the model; the run's
trajectory stays for scrubbing within a session budget, the oldest dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QMenu, QWidget

from diffusion_studio.core.images import to_rgb
from diffusion_studio.core.limits import format_bytes
from diffusion_studio.core.record import RunRecord
from diffusion_studio.core.request import SAMPLERS, SampleRequest
from diffusion_studio.core.result import RunResult

THUMBNAIL = 96
USER = Qt.ItemDataRole.UserRole
SESSION_BUDGET_BYTES = 1024 * 1024 * 1024  # the trajectories the gallery keeps for scrubbing


@dataclass(frozen=True, eq=False)
class GalleryEntry:
    """One image: its pixels and record; the run it came from while it is in memory (for its
    trajectory), and the file it was written to."""

    image: np.ndarray
    record: RunRecord
    result: RunResult | None = None
    index: int = 0
    path: Path | None = None

    @classmethod
    def of(cls, result: RunResult, index: int) -> GalleryEntry:
        written = [
            p for p in result.written if p.name.endswith(f"-{result.job.request.seed + index}.png")
        ]
        return cls(
            result.images[index],
            RunRecord.of(result.job, index),
            result,
            index,
            written[0] if written else None,
        )

    @property
    def request(self) -> SampleRequest:
        """The request that makes this image alone."""
        return self.record.request


def to_qimage(image: np.ndarray) -> QImage:
    """(H, W, C) uint8 -> a QImage that owns a copy of the pixels (RGBA shown over white)."""
    image = np.ascontiguousarray(to_rgb(image))
    height, width = image.shape[:2]
    return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_RGB888).copy()


class Gallery(QListWidget):
    """Click to inspect and scrub; the context menu uses an image as source or exports it."""

    inspected = Signal(object)  # GalleryEntry
    use_as_source = Signal(object)  # GalleryEntry
    export_requested = Signal(list)  # [GalleryEntry]
    said = Signal(str)  # a message for the status bar
    task_requested = Signal(
        object, str
    )  # GalleryEntry, "enlarge2" | "enlarge4" | "colorize" | "grow"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        # room for a thumbnail, its label and the scroll bar, which a long strip always has:
        # a fixed height that guessed them cut the labels in half at 1024x700
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        label = self.fontMetrics().height()
        self.setGridSize(QSize(THUMBNAIL + 12, THUMBNAIL + label + 10))
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(self.gridSize().height() + bar + 2 * self.frameWidth() + 4)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(self._on_current)
        self.budget_bytes = SESSION_BUDGET_BYTES
        self._results: list[RunResult] = []  # oldest first, those whose trajectory is kept

    def add_result(self, result: RunResult, beside: GalleryEntry | None = None) -> None:
        """The run's images, first of the batch leftmost, before the older ones (a fork's
        beside its parent, `beside`); the new run is selected alone."""
        row = 0
        if beside is not None:
            rows = [i for i in range(self.count()) if self.item(i).data(USER) is beside]
            row = rows[0] if rows else 0
        items = [
            self._insert(GalleryEntry.of(result, i), row)
            for i in reversed(range(len(result.images)))
        ]
        self._results.append(result)
        self._keep_to_budget()
        self.blockSignals(True)  # the new run is on show already, as a whole batch
        self.clearSelection()
        self.setCurrentItem(items[-1], QItemSelectionModel.SelectionFlag.ClearAndSelect)
        for item in items:
            item.setSelected(True)
        self.blockSignals(False)

    def add_written(self, entries: list[GalleryEntry]) -> None:
        """Images of earlier sessions (read back from the output folder), after the others."""
        for entry in entries:
            self._insert(entry, self.count())

    def _insert(self, entry: GalleryEntry, row: int) -> QListWidgetItem:
        pixmap = QPixmap.fromImage(to_qimage(entry.image)).scaled(
            THUMBNAIL,
            THUMBNAIL,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        item = QListWidgetItem(QIcon(pixmap), label_of(entry))
        item.setData(Qt.ItemDataRole.UserRole, entry)
        item.setToolTip(describe(entry))
        self.insertItem(row, item)
        return item

    def _keep_to_budget(self) -> None:
        """Drop the trajectories of the oldest runs until the kept ones fit the budget; a run
        larger than it alone keeps every second step, then every fourth..."""
        dropped = 0
        while self.nbytes > self.budget_bytes and len(self._results) > 1:
            self._results.pop(0).trajectory.drop()
            dropped += 1
        if self.nbytes > self.budget_bytes:
            newest = self._results[-1]
            newest.trajectory.fit(self.budget_bytes - newest.images.nbytes)
            dropped += newest.nbytes > self.budget_bytes
        if dropped:
            self.said.emit(
                f"The steps of {dropped} older run(s) were let go to stay under "
                f"{format_bytes(self.budget_bytes)}; their images stay"
            )

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._results)

    def entries(self, selected_only: bool = False) -> list[GalleryEntry]:
        items = (
            self.selectedItems() if selected_only else [self.item(i) for i in range(self.count())]
        )
        return [item.data(Qt.ItemDataRole.UserRole) for item in items]

    def current_entry(self) -> GalleryEntry | None:
        item = self.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def unsaved(self) -> list[GalleryEntry]:
        """The images that are only in memory (no output folder, or its write failed)."""
        return [entry for entry in self.entries() if entry.path is None]

    def _on_current(self, item: QListWidgetItem | None, previous: object) -> None:
        if item is not None:
            self.inspected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, position: QPoint) -> None:
        item = self.itemAt(position)
        if item is None:
            return
        entry = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Use as source", lambda: self.use_as_source.emit(entry))
        for text, task in (("Enlarge 2x", "enlarge2"), ("Enlarge 4x", "enlarge4"),
                           ("Colorize", "colorize"), ("Grow (outpaint)...", "grow")):  # fmt: skip
            menu.addAction(text, lambda t=task: self.task_requested.emit(entry, t))
        menu.addAction("Export selected...", lambda: self.export_requested.emit(self.entries(True)))
        menu.addAction("Remove", lambda: self.takeItem(self.row(item)))
        menu.exec(self.mapToGlobal(position))


def label_of(entry: GalleryEntry) -> str:
    """A thumbnail's caption: its seed, a fork's step, a compare cell's place."""
    record = entry.record
    if record.parent is not None:
        return f"fork @{record.at_step}"
    if record.cell is not None and record.cell.workflow == "compare":
        return f"cell {record.cell.row},{record.cell.column}"
    restore = record.restore
    if restore is not None and restore.operator != "mask":
        task = "colour" if restore.operator == "luminance" else f"{restore.factor}x"
        return f"{task}, seed {entry.request.seed}"
    return f"seed {entry.request.seed}"


def describe(entry: GalleryEntry) -> str:
    request, record = entry.request, entry.record
    what = "RePaint" if record.inpaint else "sample"
    if record.restore is not None:
        what = {"mask": "DDNM inpainting", "luminance": "colorization"}.get(
            record.restore.operator, f"{record.restore.factor}x enlargement (DDNM)"
        )
    sampler = SAMPLERS[request.sampler].label
    if "eta" in request.spec.options:
        sampler += f", eta {request.eta:g}"
    lines = [
        f"{what} with {record.model}",
        f"{sampler}, {request.num_inference_steps} steps, seed {request.seed}",
    ]
    if record.parent is not None:
        lines.append(f"a fork after step {record.at_step} of a run of "
                     f"{record.parent.request.num_inference_steps} steps")  # fmt: skip
    if record.cell is not None and (record.cell.row_label or record.cell.column_label):
        place = ", ".join(t for t in (record.cell.row_label, record.cell.column_label) if t)
        lines.append(f"{record.cell.workflow}: {place}")
    if request.class_label is not None:
        names = entry.result.job.model.class_names if entry.result else ()
        name = (
            names[request.class_label]
            if request.class_label < len(names)
            else f"class {request.class_label}"
        )
        lines.append(f"class {name}, guidance {request.guidance_scale:g}")
    if entry.result is not None:
        lines.append(f"{entry.result.seconds:.1f} s for the batch")
    if entry.path is not None:
        lines.append(str(entry.path))
    return "\n".join(lines)
