"""Export: PNGs with the request as metadata (optionally upscaled), the mask and source of an
inpainting, and the trajectory as an animated GIF or WebP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import save_animation, save_png
from diffusion_studio.core.generate import export_metadata
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.masks import save_mask
from diffusion_studio.ui.gallery import GalleryEntry


@dataclass(frozen=True)
class ExportOptions:
    folder: Path
    prefix: str = "diffusion-studio"
    upscale: int = 1
    with_inputs: bool = True  # the mask and the source of an inpainting
    trajectory: str = ""  # "", ".gif" or ".webp"
    overwrite: bool = False


def export_entries(entries: list[GalleryEntry], options: ExportOptions) -> list[Path]:
    """Write each image as PREFIX-SEED.png (and -mask.png, -source.png, the trajectory)."""
    written = []
    for entry in entries:
        job = entry.result.job
        request = entry.request
        stem = options.folder / f"{options.prefix}-{request.seed}"
        metadata, parameters = export_metadata(request, job.model, job.inpaint)
        written.append(
            save_png(
                stem.with_suffix(".png"),
                entry.image,
                metadata=metadata,
                parameters=parameters,
                upscale=options.upscale,
                overwrite=options.overwrite,
            )
        )
        if options.with_inputs and job.inpaint:
            mask = job.inpaint_mask[0, 0].cpu().numpy() > 0.5
            written.append(save_mask(mask, f"{stem}-mask.png", overwrite=options.overwrite))
            source = to_uint8(job.source)[0]
            written.append(save_png(f"{stem}-source.png", source, overwrite=options.overwrite))
        if options.trajectory:
            frames = [
                np.concatenate([f.x_t[entry.index], f.x0_pred[entry.index]], axis=1)
                for f in entry.result.trajectory.frames
            ]
            path = Path(f"{stem}-steps{options.trajectory}")
            written.append(save_animation(path, frames, overwrite=options.overwrite))
    return written


class ExportDialog(QDialog):
    """Choose the folder and what to write; `written` lists the files afterwards."""

    def __init__(
        self, entries: list[GalleryEntry], settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {len(entries)} image(s)")
        self.entries = entries
        self.settings = settings
        self.written: list[Path] = []
        self.folder = QLineEdit(str(settings.value("folders/export", str(Path.home()))))
        browse = QPushButton("Choose...")
        self.prefix = QLineEdit("diffusion-studio")
        self.upscale = QSpinBox(minimum=1, maximum=32, value=1, suffix=" x")
        self.upscale.setToolTip("Enlarge by a whole factor, nearest neighbour: pixels stay sharp")
        self.inputs = QCheckBox("Mask and source of inpaintings", checked=True)
        self.trajectory = QComboBox()
        self.trajectory.addItem("no", "")
        self.trajectory.addItem("animated GIF", ".gif")
        self.trajectory.addItem("animated WebP (lossless)", ".webp")
        self.overwrite = QCheckBox("Replace files of the same name")
        self.message = QLabel(wordWrap=True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Folder", folder_row)
        form.addRow("Name", self.prefix)
        form.addRow("Upscale", self.upscale)
        form.addRow("Also", self.inputs)
        form.addRow("Steps as", self.trajectory)
        form.addRow("", self.overwrite)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        browse.clicked.connect(self._browse)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)

    def options(self) -> ExportOptions:
        return ExportOptions(
            folder=Path(self.folder.text()).expanduser(),
            prefix=self.prefix.text().strip() or "diffusion-studio",
            upscale=self.upscale.value(),
            with_inputs=self.inputs.isChecked(),
            trajectory=self.trajectory.currentData(),
            overwrite=self.overwrite.isChecked(),
        )

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _save(self) -> None:
        options = self.options()
        try:
            self.written = export_entries(self.entries, options)
        except (InputError, OSError) as exc:
            self.message.setText(f"<span style='color:#b00020'>{exc}</span>")
            return
        self.settings.setValue("folders/export", str(options.folder))
        self.accept()
