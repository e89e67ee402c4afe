"""The window's models: the embedded default at start, a model folder, an OpenAI checkpoint
imported (converted into a diffusers folder), and the noise-aware classifier that guides it. A
mixin of MainWindow, kept apart for size."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QProgressDialog

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.info import ModelInfo

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier
    from diffusion_studio.core.model import DiffusionModel
    from diffusion_studio.core.openai_flags import OpenAIFlags

RECENT_MODELS = 10  # the model folders a record's hash is looked for in, beside the default
OTHER = "Another: paste the flags it was trained with"
PASTE_FLAGS = (
    "The flags it was trained with, as guided-diffusion's README gives them (MODEL_FLAGS, and\n"
    "DIFFUSION_FLAGS or CLASSIFIER_FLAGS), e.g. --attention_resolutions 32,16,8 --class_cond\n"
    "True --image_size 256 --learn_sigma True --num_channels 256 --num_head_channels 64 ...\n"
    "The weights are checked against them."
)


def load_model(path: str | Path | None, device: str) -> DiffusionModel:
    """core.model_files.load_model, imported when first used: torch and diffusers load with the
    first model (off the GUI thread at start), not with the window; so do the modules a run
    needs (core.run), which the inference thread would otherwise import at the first Run,
    holding the interpreter's lock while the window draws."""
    import diffusion_studio.core.run  # noqa: F401
    from diffusion_studio.core.model_files import load_model as load

    return load(path, device=device)


def _default_model_and_guide(device: str) -> tuple[DiffusionModel, Classifier | None]:
    """The loader's work at start: the embedded model and the classifier shipped to guide it
    (None where it does not load), both off the GUI thread."""
    from diffusion_studio.core.model_files import load_classifier
    from diffusion_studio.core.resources import guidance_classifier_dir

    model = load_model(None, device)
    try:
        guide = load_classifier(guidance_classifier_dir(), device=model.device)
    except (InputError, OSError):
        guide = None
    return model, guide


def convert_and_load(
    checkpoint: str | Path, out: Path, flags: OpenAIFlags, device: str
) -> tuple[Path, list[str], DiffusionModel]:
    """The importer's work: the checkpoint converted into the folder `out`, and loaded."""
    from diffusion_studio.core.convert import convert_to_folder

    out, notes = convert_to_folder(checkpoint, out, flags)
    return out, notes, load_model(out, device=device)


FREEZE = """Python's full garbage collection walks every object its cycle collector tracks: with
torch and diffusers in, about 400,000, 190 ms on the GUI thread on 2 cores, at moments the
interpreter picks, mid-run included. Frozen once, when the first model has brought them in,
they are left out of it (modules and classes, which live as long as the process anyway): a
full collection then takes about a millisecond (benchmarks/gui_responsiveness.py prints it)."""


class ModelsMixin:
    """Needs the window's state, panel, live, forward, canvas, sampler, importer and opener
    (Backgrounds connected to _on_imported and _on_import_failed, _on_opened and
    _on_open_failed), settings, model_name, model_details, device_label, model, show_error,
    clear_error, suggest_source_class and _update_actions."""

    _shipped_guide: Classifier | None = None  # loaded with the embedded model, at start

    def _load_default_model(self) -> None:
        """The embedded model, loaded off the GUI thread (the window is up meanwhile, Run
        enabled once it is ready); what waits for it (files given at start, a crash-restore
        offer) runs after, with after_model."""
        self.model_name.setText("Loading the embedded model...")
        self.statusBar().showMessage("Loading the embedded model...")
        device = self._device_choice()
        self.loader.done.connect(self._on_default_loaded)
        self.loader.failed.connect(self._on_default_failed)
        self.loader.start(lambda: _default_model_and_guide(device))

    def _on_default_loaded(self, loaded: tuple[DiffusionModel, Classifier | None]) -> None:
        model, guide = loaded
        if self.model is None:  # a model opened meanwhile stays
            self._shipped_guide = guide
            self.set_model(model)
        self._model_settled()

    def _on_default_failed(self, message: str) -> None:
        if self.model is None:
            self.model_name.setText("No model")
            self.model_details.setText(f"{message}. Open a model folder to start.")
            self.statusBar().clearMessage()
        self._model_settled()

    def _model_settled(self) -> None:
        waiters, self._model_waiters = self._model_waiters, []
        for work in waiters:
            work()

    def after_model(self, work) -> None:
        """Run `work` once the embedded model has loaded (or failed to), at once when none
        is loading."""
        if self.loader.busy or self._model_waiters:
            self._model_waiters.append(work)
        else:
            work()

    def _device_choice(self) -> str:
        return self.panel.device.currentText() or "auto"

    def move_model(self, device) -> None:
        """The model on another device (chosen in the panel before a Run): the fields stay as
        they are; "auto" precision says the new device's."""
        model = self.model.to(device)
        self.state.set_model(model)
        self.device_label.setText(f"device: {model.device}")
        self.panel.set_device_precision(model.info.precision)

    def set_model(self, model: DiffusionModel) -> None:
        """Use a loaded model: the canvas takes its size, the panel its steps and classes (and
        the devices, which torch lists: it is loaded with the first model)."""
        from diffusion_studio.core.model import available_devices

        if not self.panel.device.count():  # the first model: torch and diffusers are in
            self.panel.device.addItems(available_devices())
            if not gc.get_freeze_count():  # once a process: their objects out of the
                gc.freeze()  # collector's sight (see FREEZE)
        self.state.set_model(model)
        info = model.info
        self.model_name.setText(info.name)
        height, width = info.resolution
        kind = {1: "grey", 3: "RGB", 4: "RGBA"}.get(info.in_channels, f"{info.in_channels} ch")
        classes = f", {len(info.class_names)} classes" if info.class_names else ""
        size = f"{width}x{height} {kind}, {info.parameters / 1e6:.2f} M"
        self.model_details.setText(f"{size}, {info.prediction_type}{classes}")
        self.model_details.setToolTip("<br>".join(f"<b>{k}</b>: {v}" for k, v in info.summary()))
        self.panel.set_model(info, model.schedule.num_train_timesteps)
        self.panel.set_defaults(model.schedule.timestep_spacing, model.schedule.variance_type)
        self._choose_classifier(model)
        self.suggest_source_class()  # other classes: what the open image looks like among them
        self.live.schedule.set_schedule(model.schedule)
        self.forward.set_model_schedule(model.schedule)
        self.forward.set_image(self.canvas.source)
        self.device_label.setText(f"device: {model.device}")
        self.statusBar().showMessage(f"Model {info.name} loaded", 4000)
        self._update_actions()
        self._remember_model(info)

    # --- the models a record may name, by the hash of their weights ----------------------

    def recent_models(self) -> list[dict[str, str]]:
        """The model folders opened lately, newest first: {"path", "hash", "name"} each."""
        try:
            entries = json.loads(str(self.settings.value("models/recent", "[]")))
        except ValueError:
            return []
        if not isinstance(entries, list):
            return []
        keys = ("path", "hash", "name")
        good = [
            e for e in entries if isinstance(e, dict) and all(type(e.get(k)) is str for k in keys)
        ]
        return good[:RECENT_MODELS]

    def _remember_model(self, info: ModelInfo) -> None:
        if not info.path or not info.weights_hash:
            return
        path = str(Path(info.path).resolve())
        recent = [e for e in self.recent_models() if e["path"] != path]
        recent.insert(0, {"path": path, "hash": info.weights_hash, "name": info.name})
        self.settings.setValue("models/recent", json.dumps(recent[:RECENT_MODELS]))

    def find_model(self, short_hash: str) -> str | None:
        """The folder of the model whose weights' hash starts with `short_hash` (a record's):
        the open model ("" then: nothing to load), the embedded default, or one opened lately."""
        from diffusion_studio.core.model_files import file_hash, weights_file
        from diffusion_studio.core.resources import default_model_dir

        if not short_hash:
            return None
        if self.model is not None and self.model.info.weights_hash.startswith(short_hash):
            return ""
        default = weights_file(default_model_dir())
        if default is not None and file_hash(default).startswith(short_hash):
            return str(default_model_dir())
        for entry in self.recent_models():
            if entry["hash"].startswith(short_hash) and Path(entry["path"]).is_dir():
                return entry["path"]
        return None

    def _choose_classifier(self, model: DiffusionModel) -> None:
        """Keep the classifier if it fits the new model; else, for the embedded model, the one
        shipped to guide it; else none."""
        from diffusion_studio.core.model_files import load_classifier
        from diffusion_studio.core.resources import default_model_dir, guidance_classifier_dir

        classifier = self.state.classifier
        if classifier is not None and classifier.mismatch(model) is not None:
            classifier = None
        shipped = guidance_classifier_dir()
        embedded = Path(model.info.path).resolve() == default_model_dir().resolve()
        loaded, self._shipped_guide = self._shipped_guide, None
        if classifier is None and embedded and loaded is not None:
            classifier = loaded  # loaded with the model, off the GUI thread
        elif classifier is None and embedded and shipped.is_dir():
            try:
                classifier = load_classifier(shipped, device=model.device)
            except InputError:
                classifier = None
            if classifier is not None and classifier.mismatch(model) is not None:
                classifier = None
        self.state.set_classifier(classifier)
        self.panel.set_classifier(classifier.info if classifier else None)

    def open_classifier(self) -> None:
        """Sampler panel > Classifier > Open: a noise-aware classifier folder."""
        folder = QFileDialog.getExistingDirectory(
            self, "Open a classifier folder", self.settings.value("folders/classifier", "")
        )
        if folder:
            self.settings.setValue("folders/classifier", folder)
            self.load_classifier_folder(folder)

    def load_classifier_folder(self, folder: str | Path) -> bool:
        """Use a classifier for guidance; one that does not load or fit changes nothing."""
        from diffusion_studio.core.model_files import load_classifier

        if self.model is None or self.sampler.running:
            self.show_error("Open a model (and let its run end) before choosing a classifier.")
            return False
        try:
            classifier = load_classifier(folder, device=self.model.device)
        except InputError as exc:
            self.show_error(f"Could not open the classifier: {exc}")
            return False
        unfit = classifier.mismatch(self.model)
        if unfit:
            self.show_error(f"This classifier cannot guide the model: {unfit}")
            return False
        self.clear_error()
        self.state.set_classifier(classifier)
        self.panel.set_classifier(classifier.info)
        self.statusBar().showMessage(f"Classifier {classifier.name}: set its scale to guide", 6000)
        return True

    def open_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a diffusers model folder", self.settings.value("folders/model", "")
        )
        if folder:
            self.settings.setValue("folders/model", folder)
            self.open_model_folder(folder)

    def open_model_folder(self, folder: str | Path) -> None:
        """File > Open model folder: the model loaded off the GUI thread (a paper's checkpoint
        is gigabytes), the window usable meanwhile and Run refused until it is in; one that
        fails to load leaves the current model in place, with one message."""
        if self.sampler.running:
            self.show_error("Wait for the run to end (or cancel it) before changing the model.")
            return
        if self.opener.busy:
            self.statusBar().showMessage("A model folder is loading already", 4000)
            return
        device = self._device_choice()
        self.statusBar().showMessage(f"Loading the model in {Path(folder).name}...")
        self.opener.start(lambda: load_model(folder, device=device))

    def _on_opened(self, model: DiffusionModel) -> None:
        if self.sampler.running:  # a Compare or Grow run started meanwhile: not under it
            self.show_error(
                f"The model {model.info.name} loaded during a run: open it again once it ends."
            )
            return
        self.clear_error()
        self.set_model(model)

    def _on_open_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self.show_error(f"Could not open the model: {message}")

    def import_checkpoint(self) -> None:
        """File > Import checkpoint: an OpenAI guided-/improved-diffusion .pt, converted into a
        diffusers folder (next to it, or in a chosen folder) and opened. The conversion (and
        the forward that checks it) runs on the importer's thread, under a busy dialog: the
        window keeps drawing."""
        from PySide6.QtWidgets import QInputDialog

        from diffusion_studio.core.openai_flags import PRESETS, flags_for, flags_from_text

        if self.sampler.running or self.importer.busy:
            self.show_error("Wait for the run or the import to end before importing a checkpoint.")
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a checkpoint", self.settings.value("folders/checkpoint", ""),
            "PyTorch checkpoints (*.pt *.pth)",
        )  # fmt: skip
        if not path:
            return
        self.settings.setValue("folders/checkpoint", str(Path(path).parent))
        names = [f"{name}  ({flags.source})" for name, flags in PRESETS.items()]
        names.append(OTHER)
        choice, ok = QInputDialog.getItem(
            self, "Import a checkpoint", "Which published model is it?", names, 0, False
        )
        if not ok:
            return
        try:
            if choice == OTHER:
                text, ok = QInputDialog.getMultiLineText(
                    self,
                    "Import a checkpoint",
                    PASTE_FLAGS,
                    self.settings.value("import/flags", ""),
                )
                if not ok:
                    return
                self.settings.setValue("import/flags", text)
                flags = flags_for(None, flags_from_text(text))
            else:
                flags = flags_for(choice.split()[0])
        except InputError as exc:
            self.show_error(f"Could not import the checkpoint: {exc}")
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Where the converted model goes", str(Path(path).parent)
        )
        if not folder:
            return
        out = Path(folder) / Path(path).stem
        device = self._device_choice()
        self._importing = QProgressDialog(f"Converting {Path(path).name}...", "", 0, 0, self)
        self._importing.setWindowTitle("Import a checkpoint")
        self._importing.setCancelButton(None)  # a conversion half-done is not stopped
        self._importing.setWindowModality(Qt.WindowModality.WindowModal)
        self._importing.setMinimumDuration(0)
        self._importing.show()
        self.statusBar().showMessage(f"Converting {Path(path).name}...")
        self.importer.start(lambda: convert_and_load(path, out, flags, device))

    def _on_imported(self, result: tuple[Path, list[str], DiffusionModel]) -> None:
        out, notes, model = result
        self._importing.close()
        if self.sampler.running:  # started after the busy dialog was dismissed
            self.show_error(
                f"The checkpoint was converted into {out}: open it there once the run ends."
            )
            return
        self.clear_error()
        self.set_model(model)
        self.statusBar().showMessage(f"Imported into {out}: " + "; ".join(notes), 12000)

    def _on_import_failed(self, message: str) -> None:
        self._importing.close()
        self.statusBar().clearMessage()
        self.show_error(f"Could not import the checkpoint: {message}")

    def load_model_folder(self, folder: str | Path) -> bool:
        """Load a model here and now, for what goes on with it at once (a record's settings
        applied to the model that made them, a crash's work restored); a folder that fails to
        load leaves the current model in place."""
        if self.sampler.running:
            self.show_error("Wait for the run to end (or cancel it) before changing the model.")
            return False
        try:
            model = load_model(folder, device=self._device_choice())
        except InputError as exc:
            self.show_error(f"Could not open the model: {exc}")
            return False
        self.clear_error()
        self.set_model(model)
        return True
