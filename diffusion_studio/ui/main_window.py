"""The studio's main window: it wires the panels to each other and to the inference thread."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import (
    QCloseEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QGroupBox,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio import __version__
from diffusion_studio.core.checks import validate
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.moves import moves_of
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.result import RunResult
from diffusion_studio.ui.autosave import Autosave
from diffusion_studio.ui.background import Background
from diffusion_studio.ui.banner import ErrorBanner
from diffusion_studio.ui.canvas_panel import CanvasPanel
from diffusion_studio.ui.compare_view import CompareView
from diffusion_studio.ui.fields import FieldsScroll, guard_wheel
from diffusion_studio.ui.files import FilesMixin
from diffusion_studio.ui.forward_view import ForwardView
from diffusion_studio.ui.gallery import Gallery, GalleryEntry
from diffusion_studio.ui.grow import GrowMixin
from diffusion_studio.ui.grow_view import GrowView
from diffusion_studio.ui.live_view import LiveView
from diffusion_studio.ui.menus import build_menus
from diffusion_studio.ui.models import ModelsMixin
from diffusion_studio.ui.outputs import Outputs
from diffusion_studio.ui.run_status import RunStatus
from diffusion_studio.ui.sampler_panel import SamplerPanel
from diffusion_studio.ui.session import SessionMixin
from diffusion_studio.ui.state import StudioState
from diffusion_studio.ui.worker import Sampler, Shown
from diffusion_studio.ui.workflows import WorkflowsMixin

if TYPE_CHECKING:  # torch and diffusers load with the model, after the window is up
    from diffusion_studio.core.model import DiffusionModel

APP_NAME = "Diffusion Studio"


class MainWindow(ModelsMixin, FilesMixin, WorkflowsMixin, GrowMixin, SessionMixin, QMainWindow):
    """Model panel and sampler panel on the left; the canvas and the live view in the middle;
    the gallery below; the status bar says device, step k/N, steps per second and ETA."""

    def __init__(
        self,
        model: DiffusionModel | None = None,
        settings: QSettings | None = None,
        load_default: bool = True,
        autosave: Path | None = None,
        outputs: Path | None = None,
    ) -> None:
        """`autosave`: the folder of crash-restore sessions; `outputs`: the default folder every
        finished run is written to (None: results stay in memory, and quitting asks)."""
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.setAcceptDrops(True)
        self.settings = settings or QSettings()
        self.state = StudioState(parent=self)
        self.sampler = Sampler(self)
        self.importer = Background(self)  # a checkpoint converted and loaded, off this thread
        self.loader = Background(self)  # the embedded model, loaded while the window shows
        self.opener = Background(self)  # a model folder a person opens, loaded off this thread
        self._model_waiters: list = []  # what waits for it (ModelsMixin.after_model)
        self.outputs = Outputs(self.settings, outputs) if outputs is not None else None
        self._build()
        self.actions = build_menus(self)
        self._connect()
        self._restore_settings()
        if model is not None:
            self.set_model(model)
        elif load_default:
            self._load_default_model()
        self.autosave = None
        if autosave is not None:
            self.autosave = Autosave(
                self.state,
                autosave,
                say=lambda text: self.statusBar().showMessage(text, 8000),
                warn=self.show_error,
                load_model=self.load_model_folder,
                parent=self,
            )
        if self.autosave is not None:  # after the default model, whose size the work needs
            QTimer.singleShot(0, lambda: self.after_model(self.autosave.offer_restore))
        if self.outputs is not None:  # the results of earlier sessions, from the folder
            QTimer.singleShot(0, lambda: self.gallery.add_written(self.outputs.recent()))
        QTimer.singleShot(0, lambda: self.after_model(self._say_restored))  # once it has them
        self._update_actions()

    # --- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.canvas_panel = CanvasPanel(self.state)
        self.canvas = self.canvas_panel.canvas
        self.panel = SamplerPanel()
        self.live = LiveView()
        self.forward = ForwardView()
        self.gallery = Gallery()
        self.error = ErrorBanner()

        self.model_name = QLabel("No model", wordWrap=True)
        self.model_name.setStyleSheet("font-weight: bold;")
        self.model_details = QLabel(wordWrap=True)
        self.model_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_model_button = QPushButton("Open model folder...")
        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        for widget in (self.model_name, self.model_details, self.open_model_button):
            model_layout.addWidget(widget)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(model_box)
        left_layout.addWidget(self.panel, 1)
        scroll = FieldsScroll(left)
        settings = QWidget()  # the fields scroll; Run and Cancel stay below them, in sight
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.setSpacing(0)
        settings_layout.addWidget(scroll, 1)
        settings_layout.addWidget(self.panel.run_bar)
        self.wheel_guards = [guard_wheel(settings), guard_wheel(self.canvas_panel)]
        dock = QDockWidget("Model and sampler", self, objectName="settings-dock")
        dock.setWidget(settings)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        gallery_dock = QDockWidget("Gallery", self, objectName="gallery-dock")
        gallery_dock.setWidget(self.gallery)
        gallery_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, gallery_dock)

        studio = QSplitter(Qt.Orientation.Horizontal, objectName="studio-splitter")
        studio.addWidget(self.canvas_panel)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.live, 1)
        studio.addWidget(right)
        studio.setSizes([480, 640])
        self.splitter = studio
        self.tabs = QTabWidget()
        self.tabs.addTab(studio, "Studio")
        self.tabs.addTab(self.forward, "Forward process")
        self.compare_view = CompareView()
        self.tabs.addTab(self.compare_view, "Compare")
        self.grow_view = GrowView()
        self.tabs.addTab(self.grow_view, "Grow")
        central = QWidget()  # the error banner above the tabs: in sight on either of them
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.error)
        central_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.device_label = QLabel()
        self.run_status = RunStatus()
        status = self.statusBar()
        status.addPermanentWidget(self.run_status)
        status.addPermanentWidget(self.device_label)
        self.resize(1280, 820)

    def _connect(self) -> None:
        self.panel.run_requested.connect(self.run)
        self.panel.open_classifier_requested.connect(self.open_classifier)
        self.panel.cancel_requested.connect(self.sampler.cancel)
        self.panel.changed.connect(self._update_actions)
        self.open_model_button.clicked.connect(self.open_model)
        self.state.mask_changed.connect(self._on_canvas_changed)
        self.state.source_changed.connect(self._on_canvas_changed)
        self.state.caption_changed.connect(self.canvas_panel.caption.setText)
        self.panel.changed.connect(
            lambda: self.state.set_request(self.panel.request(), from_panel=True)
        )
        self.state.request_changed.connect(lambda: self.panel.set_request(self.state.request))
        self.sampler.started.connect(self._on_started)
        self.sampler.frame.connect(self._on_frame)
        self.sampler.progress.connect(self._on_progress)
        self.sampler.finished.connect(self._on_finished)
        self.sampler.failed.connect(self._on_failed)
        self.sampler.cancelled.connect(self._on_cancelled)
        self.sampler.running_changed.connect(self._on_running)
        self.importer.done.connect(self._on_imported)
        self.importer.failed.connect(self._on_import_failed)
        self.opener.done.connect(self._on_opened)
        self.opener.failed.connect(self._on_open_failed)
        self.gallery.inspected.connect(self.inspect)
        self.gallery.use_as_source.connect(
            lambda entry: self.set_source_image(entry.image, suggest=False)
        )
        self.gallery.export_requested.connect(self._export_entries)
        self.gallery.said.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._connect_workflows()
        self._connect_grow()

    def _on_canvas_changed(self) -> None:
        inpainting = self.canvas.source is not None and self.canvas.has_mask
        self.panel.set_inpainting(inpainting)
        self._update_actions()
        if self.canvas.source is None:
            mode = "No image: Run generates from noise."
        elif not self.canvas.has_mask:
            mode = "Paint what to regenerate; with no mask painted, Run generates from noise."
        else:
            share = self.canvas.mask.mean()
            mode = f"RePaint: {share:.0%} of the image is generated, the rest is kept exactly."
        self.canvas.setToolTip(mode)
        self.statusBar().showMessage(mode, 5000)

    # --- running ------------------------------------------------------------------------

    @property
    def model(self) -> DiffusionModel | None:
        return self.state.model

    def current_job(self, request: SampleRequest | None = None) -> Job | None:
        """The job of the work: the panel's request, and the image and mask when a mask is
        painted (RePaint), else plain sampling."""
        return self.state.job(request or self.panel.request())

    def run(self) -> None:
        if self.sampler.running:
            return
        if self.opener.busy:
            self.show_error("A model folder is loading: Run works once it is ready.")
            return
        if self.model is None:
            loading = self.loader.busy
            self.show_error("The embedded model is still loading: Run works once it is ready."
                            if loading else "Open a model folder first (File > Open model "
                            "folder).")  # fmt: skip
            return
        from diffusion_studio.core.model import pick_device

        device = self._device_choice()
        try:
            target = pick_device(device)
            if target != self.model.device:
                self.move_model(target)
        except InputError as exc:
            self.show_error(str(exc))
            return
        try:
            job = self.current_job(self.panel.request_for_run())
            validate(job.request, self.model, job.jumps, self.state.classifier)
        except InputError as exc:
            self.show_error(str(exc))
            return
        try:
            if self.outputs is not None:
                self.outputs.check()
        except InputError as exc:
            self.show_error(
                f"The result could not be saved: {exc}. Choose another folder (File > Output "
                "folder...), or turn off File > Save every result to the output folder."
            )
            return
        self.clear_error()
        self.sampler.start(self.model, job, self.state.classifier)

    @Slot(object)
    def _on_started(self, job: Job) -> None:
        timesteps = [t for t, t_next in moves_of(job, self.model.schedule) if t_next < t]
        self.live.start_run(timesteps, guided=job.classifier is not None)
        self.run_status.set_progress(0, len(timesteps), 0.0)
        kind = (
            "An outpainting pass"
            if job is self._grow_job
            else "DDNM"
            if job.restore is not None
            else "RePaint"
            if job.inpaint
            else "Sampling"
        )
        self.statusBar().showMessage(f"{kind} started: {len(timesteps)} network calls")

    @Slot(object)
    def _on_frame(self, shown: Shown) -> None:
        self.live.show_frame(shown)

    @Slot(int, int, float)
    def _on_progress(self, done: int, total: int, rate: float) -> None:
        self.run_status.set_progress(done, total, rate)

    @Slot(object)
    def _on_finished(self, result: RunResult) -> None:
        if self.owns(result):  # a pass of the Grow tab's: the tab keeps the grown picture
            return
        self._write(result)
        beside = self._fork_parent if result.job.fork is not None else None
        self._fork_parent = None
        self.gallery.add_result(result, beside=beside)
        self._inspected = self.gallery.current_entry()
        self.live.finish_run(result.calls, result.trajectory, result.job.classifier is not None)
        seconds = result.seconds
        count, height, width = result.images.shape[:3]
        self.statusBar().showMessage(
            f"Finished: {count} image(s) of {width}x{height} in {seconds:.1f} s", 8000
        )
        self.run_status.set_text(f"finished in {seconds:.1f} s")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.show_error(message)
        self.run_status.set_text("failed")

    @Slot(int)
    def _on_cancelled(self, done: int) -> None:
        self.statusBar().showMessage(f"Cancelled after {done} network calls", 6000)
        self.run_status.set_text("cancelled")

    @Slot(bool)
    def _on_running(self, running: bool) -> None:
        self.panel.set_running(running)
        self._update_actions()

    def inspect(self, entry: GalleryEntry) -> None:
        """Show a gallery image's run, scrubbable."""
        if self.sampler.running:
            return
        self._inspected = entry
        if entry.result is not None and entry.result.trajectory.frames:
            self.live.start_run(entry.result.calls)
            self.live.show_trajectory(entry.result.trajectory, image=entry.index)
        else:  # an image of an earlier session: the result alone
            self.live.show_image(entry.image)

    def show_error(self, message: str) -> None:
        """The whole message in the banner, until dismissed; the status bar only points there
        (its line is cut off at the window's edge and goes after a while)."""
        self.error.show_message(message)
        self.statusBar().showMessage("Failed: see the message above", 10000)

    def clear_error(self) -> None:
        self.error.clear()

    def _update_actions(self) -> None:
        running = self.sampler.running
        self.actions.run.setEnabled(not running and self.model is not None)
        self.panel.run_button.setEnabled(not running and self.model is not None)
        self.actions.cancel.setEnabled(running)
        self.actions.undo.setEnabled(self.canvas.can_undo)
        self.actions.redo.setEnabled(self.canvas.can_redo)
        has_results = self.gallery.count() > 0
        self.actions.export_all.setEnabled(has_results)
        self.actions.export_selected.setEnabled(has_results)
        self.actions.use_source.setEnabled(has_results)

    # --- closing ----------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        unsaved = self.gallery.unsaved()
        if unsaved and not self.ask_discard(len(unsaved)):
            event.ignore()
            return
        self.save_settings()
        if self.autosave is not None:
            self.autosave.close()
        if not self.sampler.shutdown():
            self.statusBar().showMessage("Waiting for the inference thread to stop...")
        self.importer.wait()  # a conversion is not cut off half-written
        self.loader.wait()
        self.opener.wait()
        event.accept()

    def show_help(self, page: str) -> None:
        """Help's pages: "run" (what this run does), "shortcuts", "readme", "card"."""
        from diffusion_studio.ui.help import open_help

        open_help(self, page)

    def about(self) -> None:
        from diffusion_studio.ui.help import show_about

        show_about(self, APP_NAME)
