"""The gallery strip: every image of the session as a thumbnail, newest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QMenu, QWidget

from diffusion_studio.core.generate import SampleRequest
from diffusion_studio.core.images import to_rgb
from diffusion_studio.ui.worker import RunResult

THUMBNAIL = 96


@dataclass(frozen=True)
class GalleryEntry:
    """Image `index` of a run's batch."""

    result: RunResult
    index: int

    @property
    def image(self) -> np.ndarray:
        return self.result.images[self.index]

    @property
    def request(self) -> SampleRequest:
        """The request that makes this image alone."""
        return self.result.job.request.for_image(self.index)


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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.setFixedHeight(THUMBNAIL + 28)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.currentItemChanged.connect(self._on_current)

    def add_result(self, result: RunResult) -> None:
        """The run's images, first of the batch leftmost, before the older ones."""
        for index in reversed(range(len(result.images))):
            entry = GalleryEntry(result, index)
            pixmap = QPixmap.fromImage(to_qimage(entry.image)).scaled(
                THUMBNAIL,
                THUMBNAIL,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
            item = QListWidgetItem(QIcon(pixmap), f"seed {entry.request.seed}")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(_describe(entry))
            self.insertItem(0, item)
        self.blockSignals(True)  # the new run is on show already, as a whole batch
        self.setCurrentRow(0)
        self.blockSignals(False)

    def entries(self, selected_only: bool = False) -> list[GalleryEntry]:
        items = (
            self.selectedItems() if selected_only else [self.item(i) for i in range(self.count())]
        )
        return [item.data(Qt.ItemDataRole.UserRole) for item in items]

    def current_entry(self) -> GalleryEntry | None:
        item = self.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

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
        menu.addAction("Export selected...", lambda: self.export_requested.emit(self.entries(True)))
        menu.addAction("Remove", lambda: self.takeItem(self.row(item)))
        menu.exec(self.mapToGlobal(position))


def _describe(entry: GalleryEntry) -> str:
    request = entry.request
    job = entry.result.job
    what = "RePaint" if job.inpaint else "sample"
    sampler = request.sampler.upper()
    if request.sampler == "ddim":
        sampler += f", eta {request.eta:g}"
    lines = [
        f"{what} with {job.model.info.name}",
        f"{sampler}, {request.num_inference_steps} steps, seed {request.seed}",
    ]
    if request.class_label is not None:
        name = job.model.info.class_names[request.class_label]
        lines.append(f"class {name}, guidance {request.guidance_scale:g}")
    lines.append(f"{entry.result.seconds:.1f} s for the batch")
    return "\n".join(lines)
