"""The output folder: every finished run is written there at once, with its record, so that a
result is never only in memory; the gallery is rebuilt from it at the next start.

ROOT/<date>/RUN-SEED.png (and RUN-mask.png, RUN-source.png for an inpainting), ROOT by default
in the user's pictures folder, changeable, and writing can be turned off (then quitting with
results only in memory asks first).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QSettings, QStandardPaths

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import check_place
from diffusion_studio.core.images import load_image
from diffusion_studio.core.record import next_run_number, read_written
from diffusion_studio.core.result import RunResult
from diffusion_studio.core.write import plan_outputs, write
from diffusion_studio.ui.gallery import GalleryEntry

RECENT_IMAGES = 200  # the images of earlier sessions the gallery shows at start


def default_outputs() -> Path:
    """Where results go unless a person chose another folder."""
    location = QStandardPaths.StandardLocation.PicturesLocation
    pictures = QStandardPaths.writableLocation(location)
    if not pictures:  # no pictures folder on this system: the application's data folder
        location = QStandardPaths.StandardLocation.AppLocalDataLocation
        pictures = QStandardPaths.writableLocation(location)
    return Path(pictures) / "Diffusion Studio" / "outputs"


class Outputs:
    """The output folder of a window: its root and whether results are written, kept in the
    settings; `write` puts a result in today's folder."""

    def __init__(self, settings: QSettings, default: Path) -> None:
        self.settings = settings
        self.default = default

    @property
    def root(self) -> Path:
        saved = self.settings.value("outputs/folder")
        return Path(saved) if isinstance(saved, str) and saved else self.default

    @root.setter
    def root(self, folder: Path) -> None:
        self.settings.setValue("outputs/folder", str(folder))

    @property
    def enabled(self) -> bool:
        return str(self.settings.value("outputs/enabled", "true")).lower() == "true"

    @enabled.setter
    def enabled(self, on: bool) -> None:
        self.settings.setValue("outputs/enabled", "true" if on else "false")

    def today(self) -> Path:
        return self.root / time.strftime("%Y-%m-%d")

    def check(self) -> None:
        """Raise InputError, before a run, when today's folder cannot be written (a file in
        its way, a name too long, a link loop, no permission); nothing when writing is off."""
        if self.enabled:
            check_place(self.today() / "00001-0.png")

    def write(self, result: RunResult) -> list[Path]:
        """Write a finished run (its images with their records, and an inpainting's inputs)
        into today's folder; [] when writing is off. Raises InputError or OSError."""
        if not self.enabled:
            return []
        folder = self.today()
        stem = f"{next_run_number(folder):05d}"
        return write(plan_outputs(result.job, folder, stem), [result])

    def recent(self, limit: int = RECENT_IMAGES) -> list[GalleryEntry]:
        """The images of the last runs, newest first, from the newest day folders."""
        entries: list[GalleryEntry] = []
        try:  # a folder that cannot be read (a name too long, a link loop) shows nothing
            days = sorted((p for p in self.root.iterdir() if p.is_dir()), reverse=True)
        except OSError:
            return entries
        for day in days:
            for path, record in read_written(day, limit - len(entries)):
                try:
                    image = load_image(path, channels=_channels(path))
                except InputError:
                    continue
                array = np.asarray(image).reshape(image.height, image.width, -1)
                entries.append(GalleryEntry(array, record, path=path))
            if len(entries) >= limit:
                break
        return entries


def _channels(path: Path) -> int:
    """The channels an image the studio wrote has: grey, RGB or RGBA, as its mode says."""
    with Image.open(path, formats=["PNG"]) as im:
        return {"L": 1, "LA": 1, "RGBA": 4}.get(im.mode, 3)
