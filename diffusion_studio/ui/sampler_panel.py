"""The sampler panel: DDPM or DDIM, steps, eta, spacing, seed, batch, class and guidance,
RePaint's resampling, the device, and Run / Cancel. It turns its fields into a SampleRequest."""

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

from diffusion_studio.core.model import ModelInfo, available_devices
from diffusion_studio.core.request import MAX_SEED, TIMESTEP_SPACINGS, SampleRequest
from diffusion_studio.core.run import network_calls

TIPS = {
    "ddpm": "Ancestral sampling (Ho et al., Algorithm 2): noise is added at every step.",
    "ddim": "DDIM (Song et al.): the same model in fewer steps; eta sets how much noise.",
    "steps": "Network calls from noise to image; DDPM steps are respaced from the model's T.",
    "eta": "DDIM noise: 0 = deterministic, 1 = as much as DDPM (the posterior variance).",
    "spacing": "Which timesteps the steps visit: leading starts below T, trailing at T - 1.",
    "variance": "DDPM noise per step: beta-tilde (the posterior's) or beta (larger).",
    "seed": "Image i of a batch uses seed + i: the same seed makes the same image.",
    "batch": "Images per run.",
    "class": "What to generate; unconditional uses the model's null class.",
    "guidance": "Classifier-free guidance: 1 = the class alone, more = more typical of it.",
    "jump": "RePaint: after every this many steps, go back up this many steps and redo them.",
    "resample": "RePaint: how often each stretch is redone (1 = none); harmonises the edges.",
    "device": "Where the network runs.",
    "clipped": "DDIM: re-derive the noise from the clipped x0 (guided-diffusion; eta 1 is then "
    "exactly DDPM). Off: keep the network's noise, as diffusers' DDIMScheduler does by default.",
}


ETA_STEPS = 1000  # the eta slider's resolution: 0.001


class SamplerPanel(QWidget):
    """Emits `run_requested` and `cancel_requested`; `request()` reads the fields."""

    run_requested = Signal()
    cancel_requested = Signal()
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._info: ModelInfo | None = None
        self._inpainting = False
        self._build()
        self._connect()
        self.set_model(None, 1000)

    def _build(self) -> None:
        self.ddpm = QPushButton("DDPM", checkable=True, toolTip=TIPS["ddpm"])
        self.ddim = QPushButton("DDIM", checkable=True, checked=True, toolTip=TIPS["ddim"])
        self.sampler_group = QButtonGroup(self)
        for button in (self.ddpm, self.ddim):
            self.sampler_group.addButton(button)
        self.steps = QSpinBox(minimum=1, maximum=1000, value=50, toolTip=TIPS["steps"])
        self.eta = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=ETA_STEPS, value=0)
        self.eta.setToolTip(TIPS["eta"])
        self.eta_label = QLabel("0.00")
        self.spacing = QComboBox(toolTip=TIPS["spacing"])
        self.spacing.addItems(TIMESTEP_SPACINGS)
        self.clipped = QCheckBox("Noise from the clipped x0", checked=True, toolTip=TIPS["clipped"])
        self.variance = QComboBox(toolTip=TIPS["variance"])
        self.variance.addItem("beta-tilde (posterior)", "fixed_small")
        self.variance.addItem("beta (larger)", "fixed_large")
        self.seed = QLineEdit("0", toolTip=TIPS["seed"])  # seeds outgrow a QSpinBox's int
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{1,18}")))
        self.dice = QPushButton("Random", toolTip="A new random seed (Ctrl+D)")
        self.batch = QSpinBox(minimum=1, maximum=64, value=1, toolTip=TIPS["batch"])
        self.class_box = QComboBox(toolTip=TIPS["class"])
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=20.0, singleStep=0.5, value=3.0)
        self.guidance.setToolTip(TIPS["guidance"])
        self.jump_length = QSpinBox(minimum=1, maximum=1000, value=10, toolTip=TIPS["jump"])
        self.jump_n_sample = QSpinBox(minimum=1, maximum=50, value=10, toolTip=TIPS["resample"])
        self.device = QComboBox(toolTip=TIPS["device"])
        self.device.addItems(available_devices())
        self.calls = QLabel()
        self.run_button = QPushButton("Run", toolTip="Run (Ctrl+Enter)")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", toolTip="Cancel (Esc)", enabled=False)

        switch = QHBoxLayout()
        switch.setSpacing(0)
        switch.addWidget(self.ddpm)
        switch.addWidget(self.ddim)
        eta_row = QHBoxLayout()
        eta_row.addWidget(self.eta)
        eta_row.addWidget(self.eta_label)
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
        form.addRow("Batch", self.batch)
        self.sampler_form = form
        conditioning = QGroupBox("Class")
        form = QFormLayout(conditioning)
        form.addRow("Class", self.class_box)
        form.addRow("Guidance", self.guidance)
        self.conditioning = conditioning
        repaint = QGroupBox("Inpainting (RePaint)")
        form = QFormLayout(repaint)
        form.addRow("Jump length", self.jump_length)
        form.addRow("Resamples", self.jump_n_sample)
        self.repaint = repaint
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(sampler)
        layout.addWidget(conditioning)
        layout.addWidget(repaint)
        device_row = QFormLayout()
        device_row.addRow("Device", self.device)
        layout.addLayout(device_row)
        layout.addWidget(self.calls)
        layout.addLayout(run_row)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.sampler_group.buttonToggled.connect(self._on_changed)
        self.clipped.toggled.connect(self._on_changed)
        self.eta.valueChanged.connect(self._on_changed)
        for box in (self.steps, self.batch, self.jump_length, self.jump_n_sample):
            box.valueChanged.connect(self._on_changed)
        self.seed.textChanged.connect(self._on_changed)
        self.guidance.valueChanged.connect(self._on_changed)
        for combo in (self.spacing, self.variance, self.class_box, self.device):
            combo.currentIndexChanged.connect(self._on_changed)
        self.dice.clicked.connect(self.roll_seed)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)

    # --- model and mode -----------------------------------------------------------------

    def set_model(self, info: ModelInfo | None, num_train_timesteps: int) -> None:
        """Fit the fields to a model: steps up to its T, its classes, its default spacing."""
        self._info = info
        self.steps.setMaximum(num_train_timesteps)
        self.jump_length.setMaximum(num_train_timesteps)
        self.class_box.clear()
        if info is not None and info.class_names:
            if info.null_class is not None:
                self.class_box.addItem("unconditional", None)
            for index, name in enumerate(info.class_names):
                self.class_box.addItem(name, index)
            # open on a class, guided: what a class-conditional model does best
            self.class_box.setCurrentIndex(self.class_box.findData(info.default_class))
        self.conditioning.setEnabled(bool(info and info.class_names))
        self._on_changed()

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

    def _group_enabled(self, group: QWidget) -> bool:
        if group is self.conditioning:
            return bool(self._info and self._info.class_names)
        if group is self.repaint:
            return self._inpainting
        return True

    def _on_changed(self, *args: object) -> None:
        ddim = self.ddim.isChecked()
        self.eta.setEnabled(ddim)
        self.clipped.setEnabled(ddim)
        self.eta_label.setText(f"{self.eta.value() / ETA_STEPS:.3g}")
        self.variance.setEnabled(not ddim)
        self.repaint.setEnabled(self._inpainting)
        self.guidance.setEnabled(self.class_box.currentData() is not None)
        request = self.request()
        calls = network_calls(request, self._inpainting)
        conditional = request.class_label is not None and request.guidance_scale not in (0, 1)
        forwards = calls * (2 if conditional else 1)
        kind = "RePaint " if self._inpainting else ""
        guided = " (x2 for guidance)" if forwards != calls else ""
        self.calls.setText(f"{kind}{calls} network calls, batch {request.batch_size}{guided}")
        self.changed.emit()

    # --- the request --------------------------------------------------------------------

    def request(self) -> SampleRequest:
        return SampleRequest(
            sampler="ddim" if self.ddim.isChecked() else "ddpm",
            num_inference_steps=self.steps.value(),
            eta=self.eta.value() / ETA_STEPS,
            timestep_spacing=self.spacing.currentText(),  # type: ignore[arg-type]
            variance_type=self.variance.currentData(),
            seed=min(int(self.seed.text() or 0), MAX_SEED - self.batch.value()),
            batch_size=self.batch.value(),
            class_label=self.class_box.currentData(),
            guidance_scale=self.guidance.value(),
            jump_length=self.jump_length.value(),
            jump_n_sample=self.jump_n_sample.value(),
            use_clipped_model_output=self.clipped.isChecked(),
        )

    def set_request(self, request: SampleRequest) -> None:
        """Show a request's settings (from an exported PNG): Run then makes the same image."""
        (self.ddim if request.sampler == "ddim" else self.ddpm).setChecked(True)
        self.steps.setValue(request.num_inference_steps)
        self.eta.setValue(round(request.eta * ETA_STEPS))
        if request.timestep_spacing:
            self.spacing.setCurrentText(request.timestep_spacing)
        if request.variance_type:
            self.variance.setCurrentIndex(self.variance.findData(request.variance_type))
        self.seed.setText(str(request.seed))
        self.batch.setValue(request.batch_size)
        for index in range(self.class_box.count()):
            if self.class_box.itemData(index) == request.class_label:
                self.class_box.setCurrentIndex(index)
        self.guidance.setValue(request.guidance_scale)
        self.jump_length.setValue(request.jump_length)
        self.jump_n_sample.setValue(request.jump_n_sample)
        self.clipped.setChecked(request.use_clipped_model_output)

    def differences(self, request: SampleRequest) -> list[str]:
        """The settings of `request` that the fields could not show (a value beyond a field's
        range, a class this model lacks), as "name value" for a message."""
        shown = self.request()
        missed = []
        for name, wanted in request.to_dict().items():
            if wanted is None and name in ("timestep_spacing", "variance_type"):
                continue  # the model's default, which the field shows
            if getattr(shown, name) != wanted:
                missed.append(f"{name.replace('_', ' ')} {wanted}")
        return missed

    def set_spacing(self, spacing: str) -> None:
        self.spacing.setCurrentText(spacing)

    def roll_seed(self) -> None:
        self.seed.setText(str(random.randint(0, 2**32 - 1)))
