"""The window's files: source images (file, clipboard, drop, samples), masks, export, and
restoring the settings of a dropped PNG. A mixin of MainWindow, kept apart for size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.image_class import suggest_class
from diffusion_studio.core.job import fit_source
from diffusion_studio.core.masks import load_mask, save_mask
from diffusion_studio.core.record import RunRecord, read_record
from diffusion_studio.ui.export_dialog import ExportDialog
from diffusion_studio.ui.gallery import GalleryEntry
from diffusion_studio.ui.panel_words import differences

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff)"


class FilesMixin:
    """Needs the window's canvas, canvas_panel, forward, gallery, panel, model, settings,
    show_error and clear_error."""

    # --- the source image and the mask --------------------------------------------------

    def open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a source image", self.settings.value("folders/image", ""), IMAGE_FILTER
        )
        if path:
            self.settings.setValue("folders/image", str(Path(path).parent))
            self.open_file(path)  # as a drop: a PNG the studio exported brings its settings

    def load_source(self, path: str | Path) -> bool:
        """A source image from a file, fitted to the model's size (and saying so)."""
        if self.model is None:
            self.show_error("Open a model folder first: the image is fitted to its size.")
            return False
        try:
            image, _, note = fit_source(path, self.model.info)
        except InputError as exc:
            self.show_error(str(exc))
            return False
        return self.set_source_image(image, note or Path(path).name)

    def set_source_image(self, image: np.ndarray, caption: str = "", suggest: bool = True) -> bool:
        """(H, W, C) uint8, fitted to the model's size and channels (a result, say). The mask
        of the image it replaces goes with that image (release_mask); False if the person
        chose to keep the old image. With `suggest` (an image opened, not a result or a
        record, which have their class) the class it looks like is chosen."""
        if self.model is not None:
            image, _, _ = fit_source(image, self.model.info)
        if not self.release_mask():
            return False
        self.state.set_source(image, caption)
        self.forward.set_image(image)
        self.clear_error()
        if suggest:
            self.suggest_source_class()
        else:
            self.panel.suggest_class(None)
        return True

    def clear_source(self) -> bool:
        if not self.release_mask():
            return False
        self.state.set_source(None)
        self.forward.set_image(None)
        self.panel.suggest_class(None)
        return True

    def suggest_source_class(self) -> None:
        """For a class-conditional model of the shipped classifier's classes, the class the
        source image looks like (core.image_class), chosen in the panel and said there."""
        source, model = self.state.source, self.model
        found = suggest_class(source, model.info) if source is not None and model else None
        self.panel.suggest_class(found)

    def release_mask(self) -> bool:
        """The mask belongs to the image it was painted for: when that image is closed or
        replaced, the mask is cleared (undoably), and a mask of brush strokes only after
        asking. Without this the next Run would inpaint the new image by accident. False
        when the person cancels the change of image."""
        if self.state.source is None or not self.state.has_mask:
            return True
        if self.state.mask_by_hand:
            answer = self.ask_mask()
            if answer == "cancel":
                return False
            if answer == "keep":
                return True
        self.canvas.clear_mask()
        self.statusBar().showMessage(
            "The mask went with its image: Run generates from noise until a new one is painted "
            "(Ctrl+Z brings it back)",
            8000,
        )
        return True

    def ask_mask(self) -> str:
        """What to do with a painted mask when its image goes: "clear", "keep" or "cancel"."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "The mask of this image",
            "The mask was painted for the current image. Clear it for the new one? "
            "(Ctrl+Z brings it back.)",
            parent=self,
        )
        clear = box.addButton("Clear the mask", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep the mask", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(clear)
        box.exec()
        return {clear: "clear", keep: "keep"}.get(box.clickedButton(), "cancel")

    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_error("The clipboard holds no image.")
            return
        self.set_source_image(qimage_to_array(image), "Image from the clipboard")

    def use_result_as_source(self) -> None:
        entry = self.gallery.current_entry()
        if entry is not None:
            self.set_source_image(entry.image, suggest=False)  # made with its class already

    def import_mask(self, invert: bool = False) -> None:
        """A mask file: white = generate, or with `invert` white = keep (RePaint's files)."""
        convention = "white = keep, inverted on import" if invert else "white = generate"
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"Import a mask ({convention})",
            self.settings.value("folders/mask", ""),
            IMAGE_FILTER,
        )
        if path:
            self.settings.setValue("folders/mask", str(Path(path).parent))
            self.load_mask_file(path, invert=invert)

    def load_mask_file(self, path: str | Path, invert: bool = False) -> bool:
        try:
            self.canvas.set_mask(load_mask(path, self.canvas.image_size, invert=invert))
        except InputError as exc:
            self.show_error(str(exc))
            return False
        return True

    def export_mask(self, invert: bool = False) -> None:
        """The mask as PNG at the model's size: white = generate, or inverted (white = keep)."""
        convention = "white = keep" if invert else "white = generate"
        path, _ = QFileDialog.getSaveFileName(
            self,
            f"Export the mask ({convention})",
            self.settings.value("folders/mask", ""),
            "PNG (*.png)",
        )
        if not path:
            return
        self.settings.setValue("folders/mask", str(Path(path).parent))
        # the dialog asked before replacing the name it was given; a name it did not see
        # (".png" added here) is asked about again
        replace = True
        if not path.lower().endswith(".png"):
            path += ".png"
            replace = not Path(path).exists() or self.ask_replace(Path(path))
            if not replace:
                return
        try:
            save_mask(self.canvas.mask, path, invert=invert, overwrite=replace)
        except (InputError, OSError) as exc:
            self.show_error(f"Could not save the mask: {exc}")

    def ask_replace(self, path: Path) -> bool:
        """Ask before replacing a file (the window's explicit "Replace")."""
        answer = QMessageBox.question(
            self,
            "Replace the file?",
            f"{path.name} already exists in {path.parent}. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # --- export and drop-back -----------------------------------------------------------

    def export(self, selected_only: bool) -> None:
        entries = self.gallery.entries(selected_only)
        if not entries and selected_only:
            entries = self.gallery.entries()[:1]
        self._export_entries(entries)

    def _export_entries(self, entries: list[GalleryEntry]) -> None:
        if not entries:
            self.show_error("Nothing to export yet: Run first.")
            return
        dialog = ExportDialog(entries, self.settings, self)
        dialog.exec()
        if dialog.written:
            self.statusBar().showMessage(
                f"Exported {len(dialog.written)} file(s) to {dialog.written[0].parent}", 8000
            )

    def restore_from_png(self, path: str | Path) -> bool:
        """A PNG this studio exported: its settings (and seed) come back, so Run remakes it.
        A damaged or hostile record is one message, and nothing of it is applied."""
        try:
            record = read_record(path)
        except InputError as exc:
            self.show_error(str(exc))
            return False
        return record is not None and self._apply_record(record, Path(path))

    def _apply_record(self, record: RunRecord, path: Path) -> bool:
        """The whole job of a record: its model (found by the hash of its weights), its
        settings, and an inpainting's source and mask, so that Run makes the image again."""
        if record.inpaint and not self.release_mask():  # asked first: nothing applied yet
            return False
        found = self._model_of_record(record)
        if found is None:  # its model was found and failed to load: said there
            return False
        note, missing = found
        if record.restore is not None:  # made on the command line: the window cannot yet
            kind = {"mask": "a DDNM inpainting", "average": "an enlargement",
                    "luminance": "a colorization"}[record.restore.operator]  # fmt: skip
            note += (f", but it is {kind} (DDNM), which the window does not make yet: Run makes "
                     "the settings' own run; `diffusion-studio fork FILE --at-step 0` makes it "
                     "again")  # fmt: skip
            missing = True
        self.state.set_request(record.request)
        missed = differences(self.panel, record.request)
        self.clear_error()
        if record.source is not None and record.mask is not None:
            self.set_source_image(record.source, f"Source and mask of {path.name}", suggest=False)
            if record.mask.shape == self.canvas.image_size:
                self.canvas.set_mask(record.mask)
            else:
                missed.append(f"the mask ({record.mask.shape[1]}x{record.mask.shape[0]})")
        if missed:
            self.show_error(
                f"Settings of {path.name} restored, but not {', '.join(missed)}: "
                f"this model or panel cannot take them{note}"
            )
        elif missing:
            self.show_error(f"Settings of {path.name} restored{note}")
        else:
            what = "Source, mask and settings" if record.inpaint else "Settings"
            self.statusBar().showMessage(
                f"{what} of {path.name} restored: Run makes it again{note}", 10000
            )
        return True

    def _model_of_record(self, record: RunRecord) -> tuple[str, bool] | None:
        """Open the model that made a record, found by the hash of its weights (find_model):
        (a note for the message, whether that model is missing), or None when it was found and
        failed to load. A record without a hash (an earlier version's) is compared by name."""
        current = self.model.info if self.model is not None else None
        if not record.model_hash:
            if current is not None and record.model and record.model != current.name:
                return f" (made with {record.model}; the current model is {current.name})", False
            return "", False
        made = f"{record.model} [{record.model_hash}]"
        folder = self.find_model(record.model_hash)
        if folder == "":
            return "", False
        if folder is None:
            return (
                f", but it was made with {made}, which is not the open model, the embedded one "
                "nor one opened lately: open its folder (File > Open model folder) to make it "
                "again",
                True,
            )
        if not self.load_model_folder(folder):
            return None
        if not self.model.info.weights_hash.startswith(record.model_hash):  # changed since
            return f", but {folder} no longer holds the weights of {made}", True
        return f", with the model that made it, {made}", False

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def open_file(self, path: str | Path) -> bool:
        """A file given to the studio (dropped, or named on the command line): a PNG it
        exported brings its settings back; any other image becomes the source."""
        path = Path(path)
        if not path.is_file():
            self.show_error(f"{path} does not exist or is not a file")
            return False
        if is_png(path):  # by its content: an EPS named .png is not read as a record
            try:
                record = read_record(path)
            except InputError as exc:  # a PNG with a bad record: said once, nothing applied
                self.show_error(str(exc))
                return False
            if record is not None:
                return self._apply_record(record, path)
        return self.load_source(path)

    def dropEvent(self, event: QDropEvent) -> None:
        data = event.mimeData()
        for url in data.urls():
            if url.isLocalFile() and self.open_file(url.toLocalFile()):
                event.acceptProposedAction()
                return
        if data.hasImage():
            self.set_source_image(qimage_to_array(QImage(data.imageData())))
            event.acceptProposedAction()


def is_png(path: Path) -> bool:
    """Whether the file starts with the PNG signature."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage (a pasted or dropped picture) as (H, W, 4) uint8 RGBA; set_source_image
    then gives it the model's channels (alpha over white for RGB and grey)."""
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rgba = data.reshape(height, image.bytesPerLine())[:, : width * 4].reshape(height, width, 4)
    return np.ascontiguousarray(rgba)
