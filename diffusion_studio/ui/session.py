"""What the window keeps between sessions and of each result: its settings restored at start
(and said where they differ from the model's opening ones) and saved at the end, each finished
run written to the output folder, and what quitting asks when something is only in memory. A
mixin of MainWindow, kept apart for size."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QFileDialog, QMessageBox

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.request import SampleRequest, default_request
from diffusion_studio.core.result import RunResult
from diffusion_studio.ui.panel_words import settings_beside


class SessionMixin:
    """Needs the window's settings, panel, splitter, canvas_panel, outputs, model, show_error
    and statusBar."""

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter = self.settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        saved = self.settings.value("sampler/request")
        self._restored_settings = False
        if isinstance(saved, str):
            # settings from another version are dropped: the defaults stand
            with contextlib.suppress(ValueError, TypeError):
                self.panel.set_request(SampleRequest.from_dict(json.loads(saved)))
                self._restored_settings = True
        opacity = self.settings.value("canvas/opacity")
        if opacity is not None:
            self.canvas_panel.opacity.setValue(int(opacity))

    def _say_restored(self) -> None:
        """Say which settings of the last start are back and differ from the model's opening
        ones: a field scrolled out of sight (a classifier scale of 5) is not a surprise."""
        if not self._restored_settings or self.model is None:
            return
        self._restored_settings = False
        info, schedule = self.model.info, self.model.schedule
        opening = default_request(
            len(info.class_names),
            info.default_class,
            info.null_class,
            timestep_spacing=schedule.timestep_spacing,
            variance_type=schedule.variance_type,
        )
        changed = settings_beside(self.panel, opening)
        if changed:
            self.statusBar().showMessage(f"Settings of the last start: {', '.join(changed)}", 20000)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.setValue("sampler/request", json.dumps(self.panel.request().to_dict()))
        self.settings.setValue("canvas/opacity", self.canvas_panel.opacity.value())
        self.settings.sync()

    def _write(self, result: RunResult) -> None:
        """Write a finished run to the output folder at once; a failure is said, and the run
        stays in the gallery (quitting then asks)."""
        if self.outputs is None or not self.outputs.enabled:
            return
        try:
            result.written = self.outputs.write(result)
        except (InputError, OSError) as exc:
            self.show_error(f"Could not write the result to {self.outputs.today()}: {exc}")
            return
        if result.written:
            self.statusBar().showMessage(f"Saved to {result.written[0].parent}", 6000)

    def choose_output_folder(self) -> None:
        if self.outputs is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Output folder", str(self.outputs.root))
        if folder:
            self.outputs.root = Path(folder)

    def set_saving(self, on: bool) -> None:
        if self.outputs is not None:
            self.outputs.enabled = on

    def ask_discard(self, count: int) -> bool:
        """Whether to quit although `count` images are only in memory."""
        answer = QMessageBox.question(
            self,
            "Quit without saving?",
            f"{count} image(s) of this session are not saved anywhere (the output folder is "
            "off, or could not be written). Quit anyway and lose them?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard
