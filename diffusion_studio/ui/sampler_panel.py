"""The sampler panel: DDPM or DDIM, steps, eta, spacing, seed, batch, class, classifier-free
guidance and classifier guidance, RePaint's resampling, the device, and Run / Cancel. It turns
its fields into a SampleRequest."""

from __future__ import annotations

import random

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.image_class import ClassSuggestion
from diffusion_studio.core.info import ClassifierInfo, ModelInfo
from diffusion_studio.core.moves import network_calls
from diffusion_studio.core.request import (
    FIXED_VARIANCES,
    MAX_SEED,
    OPTION_TIPS,
    PRECISIONS,
    SAMPLERS,
    TIMESTEP_SPACINGS,
    VARIANCE_LABELS,
    SampleRequest,
    default_request,
)

TIPS = {
    **OPTION_TIPS,
    "device": "Where the network runs.",
    "new_seed": "A new random seed at every Run (A1111's seed -1); the seed used is shown.",
    "classifier": "The noise-aware classifier whose gradient steers each step (classifier "
    "guidance); it must be trained on this model's noise, size and classes.",
}


ETA_STEPS = 1000  # the eta slider's resolution: 0.001


class SamplerPanel(QWidget):
    """Emits `run_requested` and `cancel_requested`; `request()` reads the fields."""

    run_requested = Signal()
    cancel_requested = Signal()
    open_classifier_requested = Signal()
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._info: ModelInfo | None = None
        self._inpainting = False
        self._classifier: ClassifierInfo | None = None
        self._build()
        self._connect()
        self.set_model(None, 1000)

    def _build(self) -> None:
        self.buttons = {  # the sampler table: one button each, with its tip
            name: QPushButton(spec.label, checkable=True, toolTip=spec.tip)
            for name, spec in SAMPLERS.items()
        }
        self.buttons["ddim"].setChecked(True)
        self.sampler_group = QButtonGroup(self)
        for button in self.buttons.values():
            self.sampler_group.addButton(button)
        self.steps = QSpinBox(minimum=1, maximum=1000, value=50)
        self.steps.setToolTip(TIPS["num_inference_steps"])
        self.eta = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=ETA_STEPS, value=0)
        self.eta.setToolTip(TIPS["eta"])
        self.eta_box = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=3)
        self.eta_box.setToolTip(TIPS["eta"])
        self.spacing = QComboBox(toolTip=TIPS["timestep_spacing"])
        self.spacing.addItems(TIMESTEP_SPACINGS)
        self.clipped = QCheckBox("Noise from the clipped x0", checked=True)
        self.clipped.setToolTip(TIPS["use_clipped_model_output"])
        self.variance = QComboBox(toolTip=TIPS["variance_type"])
        self._fill_variances(learned=False)
        self.seed = QLineEdit("0", toolTip=TIPS["seed"])  # seeds outgrow a QSpinBox's int
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{1,18}")))
        self.dice = QPushButton("Random", toolTip="A new random seed (Ctrl+D)")
        self.new_seed = QCheckBox("New each run", toolTip=TIPS["new_seed"])
        self.batch = QSpinBox(minimum=1, maximum=64, value=1, toolTip=TIPS["batch_size"])
        self.class_box = QComboBox(toolTip=TIPS["class_label"])
        self.class_note = QLabel(wordWrap=True, visible=False)
        self.class_note.setToolTip(
            "The class the opened image looks like to the shipped classifier, chosen for the "
            "inpainting (which regenerates the masked part as its class); choose another above."
        )
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=20.0, singleStep=0.5, value=3.0)
        self.guidance.setToolTip(TIPS["guidance_scale"])
        self.classifier_name = QLabel("none", toolTip=TIPS["classifier"], wordWrap=True)
        self.open_classifier = QPushButton("Open...", toolTip="Open a classifier folder")
        self.classifier_scale = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.5)
        self.classifier_scale.setToolTip(TIPS["classifier_scale"])
        self.jump_length = QSpinBox(minimum=1, maximum=1000, value=10)
        self.jump_length.setToolTip(TIPS["jump_length"])
        self.jump_n_sample = QSpinBox(minimum=1, maximum=50, value=10)
        self.jump_n_sample.setToolTip(TIPS["jump_n_sample"])
        # the fields of the samplers' own options, enabled for the sampler that reads them
        self.option_fields = {
            "eta": (self.eta, self.eta_box),
            "use_clipped_model_output": (self.clipped,),
            "variance_type": (self.variance,),
        }
        self.device = QComboBox(toolTip=TIPS["device"])  # filled with the first model
        self.precision = QComboBox(toolTip=TIPS["precision"])
        self.precision.addItem("auto", None)  # the device's: set_model names it
        for name in PRECISIONS:
            self.precision.addItem(name, name)
        self.calls = QLabel(wordWrap=True)  # wraps: a long summary never widens the panel
        self.run_button = QPushButton("Run", toolTip="Run (Ctrl+Enter)")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", toolTip="Cancel (Esc)", enabled=False)

        switch = QHBoxLayout()
        switch.setSpacing(0)
        for button in self.buttons.values():
            switch.addWidget(button)
        eta_row = QHBoxLayout()
        eta_row.addWidget(self.eta, 1)
        eta_row.addWidget(self.eta_box)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)

        sampler = QGroupBox("Sampler")
        form = QFormLayout(sampler)
        form.addRow(switch)
        form.addRow("Steps", self.steps)
        form.addRow("Eta", eta_row)
        form.addRow("", self.clipped)
        form.addRow("Spacing", self.spacing)
        form.addRow("Variance", self.variance)
        form.addRow("Seed", seed_row)
        form.addRow("", self.new_seed)
        form.addRow("Batch", self.batch)
        self.sampler_form = form
        conditioning = QGroupBox("Class")
        form = QFormLayout(conditioning)
        form.addRow("Class", self.class_box)
        form.addRow("", self.class_note)
        form.addRow("Guidance", self.guidance)
        form.addRow("Classifier", self.classifier_name)  # a long name wraps in the whole field
        form.addRow("", self.open_classifier)
        form.addRow("Classifier scale", self.classifier_scale)
        self.conditioning = conditioning
        repaint = QGroupBox("Inpainting (RePaint)")
        form = QFormLayout(repaint)
        form.addRow("Jump length", self.jump_length)
        form.addRow("Resamples", self.jump_n_sample)
        self.repaint = repaint
        # Run and Cancel stay in sight: the window puts this bar below the scrolled fields
        self.run_bar = QWidget()
        bar = QVBoxLayout(self.run_bar)
        bar.setContentsMargins(6, 2, 6, 4)
        bar.addWidget(self.calls)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        bar.addLayout(run_row)
        layout = QVBoxLayout(self)
        layout.addWidget(sampler)
        layout.addWidget(conditioning)
        layout.addWidget(repaint)
        device_row = QFormLayout()
        device_row.addRow("Device", self.device)
        device_row.addRow("Precision", self.precision)
        layout.addLayout(device_row)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.sampler_group.buttonToggled.connect(self._on_changed)
        self.clipped.toggled.connect(self._on_changed)
        # the box holds eta and the slider follows it; the slider never writes back into the
        # box while it is typed in (0.3 of 0.35 would become 0.300 and the 5 be refused)
        self.eta.valueChanged.connect(self._on_eta_slider)
        self.eta_box.valueChanged.connect(self._on_eta_box)
        for box in (self.steps, self.batch, self.jump_length, self.jump_n_sample):
            box.valueChanged.connect(self._on_changed)
        self.seed.textChanged.connect(self._on_changed)
        self.guidance.valueChanged.connect(self._on_changed)
        self.classifier_scale.valueChanged.connect(self._on_changed)
        self.open_classifier.clicked.connect(self.open_classifier_requested)
        for combo in (self.spacing, self.variance, self.class_box, self.device, self.precision):
            combo.currentIndexChanged.connect(self._on_changed)
        self.dice.clicked.connect(self.roll_seed)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)

    # --- model and mode -----------------------------------------------------------------

    def _fill_variances(self, learned: bool) -> None:
        """The DDPM variances: the fixed two, and the model's own when it learns it."""
        self.variance.clear()
        for name, label in VARIANCE_LABELS.items():
            if learned or name in FIXED_VARIANCES:
                self.variance.addItem(label, name)

    def set_model(self, info: ModelInfo | None, num_train_timesteps: int) -> None:
        """Fit the fields to a model: steps up to its T, its classes, its default spacing."""
        self._info = info
        self._fill_variances(learned=bool(info and info.learns_variance))
        self.steps.setMaximum(num_train_timesteps)
        self.jump_length.setMaximum(num_train_timesteps)
        self._fill_classes()
        if info is not None:  # the same rule as the command line's (core.request)
            opening = default_request(len(info.class_names), info.default_class, info.null_class)
            self.class_box.setCurrentIndex(max(0, self.class_box.findData(opening.class_label)))
            self.guidance.setValue(opening.guidance_scale)
        self.set_device_precision(info.precision if info else None)
        self._on_changed()

    def set_device_precision(self, precision: str | None) -> None:
        """What "auto" runs in on the model's device, said in its item."""
        self.precision.setItemText(0, f"auto ({precision})" if precision else "auto")

    def set_classifier(self, info: ClassifierInfo | None) -> None:
        """The guiding classifier (one that fits the model), or None: its scale comes alive,
        and an unconditional model takes its classes."""
        self._classifier = info
        self.classifier_name.setText(info.name if info else "none")
        self.classifier_name.setToolTip(info.path if info else TIPS["classifier"])
        chosen = self.class_box.currentData()
        self._fill_classes()
        index = self.class_box.findData(chosen)
        self.class_box.setCurrentIndex(max(0, index))
        self._on_changed()

    def _fill_classes(self) -> None:
        """The model's classes (and "unconditional" where it has a null class), or for an
        unconditional model guided by a classifier, the classifier's."""
        info, guide = self._info, self._classifier
        self.class_box.blockSignals(True)
        self.class_box.clear()
        if info is not None and info.class_names:
            if info.null_class is not None:
                self.class_box.addItem("unconditional", None)
            for index, name in enumerate(info.class_names):
                self.class_box.addItem(name, index)
        elif guide is not None:
            for index, name in enumerate(guide.class_names):
                self.class_box.addItem(name, index)
        self.class_box.blockSignals(False)
        self.conditioning.setEnabled(self._group_enabled(self.conditioning))

    def suggest_class(self, suggestion: ClassSuggestion | None) -> None:
        """The class the opened image looks like: chosen, and said under the class box (the
        person can choose another); None says nothing."""
        self.class_note.setVisible(suggestion is not None)
        if suggestion is None:
            self.class_note.clear()
            return
        index = self.class_box.findData(suggestion.label)
        if index >= 0:
            self.class_box.setCurrentIndex(index)
        self.class_note.setText(suggestion.describe()[0].upper() + suggestion.describe()[1:])

    def set_inpainting(self, inpainting: bool) -> None:
        """With an image and a mask the run is RePaint: its settings come alive."""
        self._inpainting = inpainting
        self._on_changed()

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for group in (self.sampler_form.parentWidget(), self.conditioning, self.repaint):
            group.setEnabled(not running and self._group_enabled(group))
        self.device.setEnabled(not running)
        self.precision.setEnabled(not running)

    def _group_enabled(self, group: QWidget) -> bool:
        if group is self.conditioning:
            return bool(self._info and (self._info.class_names or self._classifier))
        if group is self.repaint:
            return self._inpainting
        return True

    def _on_eta_slider(self, position: int) -> None:
        self.eta_box.blockSignals(True)
        self.eta_box.setValue(position / ETA_STEPS)
        self.eta_box.blockSignals(False)
        self._on_changed()

    def _on_eta_box(self, value: float) -> None:
        self.eta.blockSignals(True)
        self.eta.setValue(round(value * ETA_STEPS))
        self.eta.blockSignals(False)
        self._on_changed()

    @property
    def sampler(self) -> str:
        return next(name for name, button in self.buttons.items() if button.isChecked())

    def _on_changed(self, *args: object) -> None:
        options = SAMPLERS[self.sampler].options
        for option, fields in self.option_fields.items():
            for field in fields:
                field.setEnabled(option in options)
        self.repaint.setEnabled(self._inpainting)
        conditional_model = bool(self._info and self._info.class_names)
        chosen = self.class_box.currentData() is not None
        self.guidance.setEnabled(conditional_model and chosen)
        self.classifier_scale.setEnabled(self._classifier is not None and chosen)
        request = self.request()
        calls = network_calls(request, self._inpainting)
        conditional = (
            conditional_model
            and request.class_label is not None
            and request.guidance_scale not in (0, 1)
        )
        forwards = calls * (2 if conditional else 1)
        kind = "RePaint " if self._inpainting else ""
        guided = " (x2 for guidance)" if forwards != calls else ""
        if request.classifier_scale:  # said here too: the field may be scrolled out of sight
            guided += f", classifier scale {request.classifier_scale:g} (a gradient each)"
        self.calls.setText(f"{kind}{calls} network calls, batch {request.batch_size}{guided}")
        self.changed.emit()

    # --- the request --------------------------------------------------------------------

    def request(self) -> SampleRequest:
        return SampleRequest(
            sampler=self.sampler,  # type: ignore[arg-type]
            num_inference_steps=self.steps.value(),
            eta=self.eta_box.value(),
            timestep_spacing=self.spacing.currentText(),  # type: ignore[arg-type]
            variance_type=self.variance.currentData(),
            seed=min(int(self.seed.text() or 0), MAX_SEED - self.batch.value()),
            batch_size=self.batch.value(),
            class_label=self.class_box.currentData(),
            guidance_scale=self.guidance.value(),
            classifier_scale=self.classifier_scale.value() if self._guided() else 0.0,
            jump_length=self.jump_length.value(),
            jump_n_sample=self.jump_n_sample.value(),
            use_clipped_model_output=self.clipped.isChecked(),
            precision=self.precision.currentData(),
        )

    def _guided(self) -> bool:
        return self._classifier is not None and self.class_box.currentData() is not None

    def set_request(self, request: SampleRequest) -> None:
        """Show a request's settings (from an exported PNG): Run then makes the same image."""
        self.buttons[request.sampler].setChecked(True)
        self.steps.setValue(request.num_inference_steps)
        self.eta_box.setValue(request.eta)
        if request.timestep_spacing:
            self.spacing.setCurrentText(request.timestep_spacing)
        found = self.variance.findData(request.variance_type) if request.variance_type else -1
        if found >= 0:  # one this model does not offer stays as it was: differences says so
            self.variance.setCurrentIndex(found)
        self.seed.setText(str(request.seed))
        self.batch.setValue(request.batch_size)
        for index in range(self.class_box.count()):
            if self.class_box.itemData(index) == request.class_label:
                self.class_box.setCurrentIndex(index)
        self.guidance.setValue(request.guidance_scale)
        self.classifier_scale.setValue(request.classifier_scale)
        self.jump_length.setValue(request.jump_length)
        self.jump_n_sample.setValue(request.jump_n_sample)
        self.clipped.setChecked(request.use_clipped_model_output)
        self.precision.setCurrentIndex(max(0, self.precision.findData(request.precision)))

    def set_defaults(self, spacing: str, variance_type: str) -> None:
        """The model's own spacing and DDPM variance, which a request that leaves them open
        (the command line's default) gets too."""
        self.spacing.setCurrentText(spacing)
        self.variance.setCurrentIndex(max(0, self.variance.findData(variance_type)))

    def roll_seed(self) -> None:
        self.seed.setText(str(random.randint(0, 2**32 - 1)))

    def request_for_run(self) -> SampleRequest:
        """The request of a Run: with "New each run", a new seed first (shown in the field, so
        the image can be made again)."""
        if self.new_seed.isChecked():
            self.roll_seed()
        return self.request()
