"""Export: PNGs with the request as metadata (optionally upscaled), the mask and source of an
inpainting, and the trajectory as an animated GIF or WebP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
from diffusion_studio.core.export import ANIMATIONS
from diffusion_studio.core.record import next_run_number
from diffusion_studio.core.result import RunResult
from diffusion_studio.core.write import Output, copied_outputs, plan_outputs, write
from diffusion_studio.ui.gallery import GalleryEntry


@dataclass(frozen=True)
class ExportOptions:
    folder: Path
    upscale: int = 1
    with_inputs: bool = True  # the mask and the source of an inpainting
    trajectory: str = ""  # "" or a suffix of core.export.ANIMATIONS
    overwrite: bool = False


def export_entries(entries: list[GalleryEntry], options: ExportOptions) -> list[Path]:
    """Write the entries with core.write's one naming scheme: each run its own number in the
    folder (RUN-SEED.png, RUN-mask.png, RUN-source.png, RUN-steps.gif), so N results are N
    sets and never collide. The upscale applies to every file."""
    runs: dict[int, tuple[RunResult | None, list[GalleryEntry]]] = {}
    for entry in entries:  # the images of one run go together, with its inputs once
        key = id(entry.result) if entry.result is not None else id(entry)
        runs.setdefault(key, (entry.result, []))[1].append(entry)
    number = next_run_number(options.folder)
    outputs: list[Output] = []
    results: list[RunResult] = []
    for k, (result, group) in enumerate(runs.values()):
        stem = f"{number + k:05d}"
        if result is None:  # an image of an earlier session, from its file
            outputs += copied_outputs(group[0].path, options.folder, stem,
                                      inputs=options.with_inputs)  # fmt: skip
            continue
        steps = options.trajectory if result.trajectory.frames else ""
        images = sorted(entry.index for entry in group)
        outputs += plan_outputs(result.job, options.folder, stem, run=len(results),
                                images=images, trajectory=steps,
                                inputs=options.with_inputs)  # fmt: skip
        results.append(result)
    return write(outputs, results, upscale=options.upscale, overwrite=options.overwrite)


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
        self.upscale = QSpinBox(minimum=1, maximum=32, value=1, suffix=" x")
        self.upscale.setToolTip("Enlarge by a whole factor, nearest neighbour: pixels stay sharp")
        self.inputs = QCheckBox("Mask and source of inpaintings", checked=True)
        self.trajectory = QComboBox()
        self.trajectory.addItem("no", "")
        for suffix, label in ANIMATIONS.items():
            self.trajectory.addItem(label, suffix)
        self.overwrite = QCheckBox("Replace files of the same name")
        self.message = QLabel(wordWrap=True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Folder", folder_row)
        form.addRow("Names", QLabel("RUN-SEED.png, each run its own number (00001, ...)"))
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
