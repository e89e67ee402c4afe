"""The forward process q(x_t | x_0): an image noised to any t, under the model's schedule or
another, beside alpha-bar and the signal-to-noise ratio, so a person sees what each t means."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.ui.live_view import ImagePane

SCHEDULES = {
    "linear (DDPM)": {"beta_schedule": "linear"},
    "cosine (improved DDPM)": {"beta_schedule": "squaredcos_cap_v2"},
}


class ForwardView(QWidget):
    """x_0 | x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, with a fixed eps, and a t slider."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schedule_box = QComboBox()
        self.t = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=999, value=250)
        self.t.setToolTip("The timestep: 0 is almost the image, T - 1 almost pure noise")
        self.readout = QLabel()
        self.clean = ImagePane("x_0")
        self.noised = ImagePane("x_t ~ q(x_t | x_0)")
        self.plot = pg.PlotWidget(background=None)
        plot = self.plot.getPlotItem()
        plot.setLabel("bottom", "timestep t")
        plot.setLogMode(y=True)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.addLegend(offset=(-10, 10))
        plot.setMouseEnabled(x=False, y=False)
        self.alpha_bar = plot.plot(pen=pg.mkPen("#2a7fd4", width=2), name="alpha-bar")
        self.snr = plot.plot(pen=pg.mkPen("#2aa05a", width=2), name="SNR = ab / (1 - ab)")
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0308a", width=2))
        plot.addItem(self.marker)
        controls = QFormLayout()
        controls.addRow("Schedule", self.schedule_box)
        controls.addRow("t", self.t)
        images = QHBoxLayout()
        images.addWidget(self.clean)
        images.addWidget(self.noised)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.readout)
        layout.addLayout(images, 3)
        layout.addWidget(self.plot, 2)
        self._model_schedule: NoiseSchedule | None = None
        self._image: np.ndarray | None = None
        self._x_0: np.ndarray | None = None
        self._noise: np.ndarray | None = None
        self._fill_schedules()
        self.schedule_box.currentIndexChanged.connect(self._on_schedule)
        self.t.valueChanged.connect(self._update)
        self._on_schedule()

    def _fill_schedules(self) -> None:
        self.schedule_box.blockSignals(True)
        self.schedule_box.clear()
        if self._model_schedule is not None:
            self.schedule_box.addItem(
                f"the model's ({self._model_schedule.beta_schedule})", "model"
            )
        for name in SCHEDULES:
            self.schedule_box.addItem(name, name)
        self.schedule_box.blockSignals(False)

    def set_model_schedule(self, schedule: NoiseSchedule | None) -> None:
        self._model_schedule = schedule
        self._fill_schedules()
        self._on_schedule()

    def set_image(self, image: np.ndarray | None) -> None:
        """(H, W, C) uint8, or None for a grey placeholder; the noise is drawn once per image."""
        if image is None:
            image = np.full((32, 32, 3), 128, dtype=np.uint8)
        self._image = image
        self._x_0 = image.astype(np.float32) / 127.5 - 1  # as the model sees it, in numpy
        self._noise = np.random.default_rng(0).standard_normal(image.shape, dtype=np.float32)
        self.clean.show_image(image)
        self._update()

    def schedule(self) -> NoiseSchedule:
        key = self.schedule_box.currentData()
        if key == "model" and self._model_schedule is not None:
            return self._model_schedule
        return NoiseSchedule.from_config(SCHEDULES.get(key, SCHEDULES["linear (DDPM)"]))

    def _on_schedule(self) -> None:
        schedule = self.schedule()
        t = np.arange(schedule.num_train_timesteps)
        alpha_bar = np.clip(schedule.alphas_cumprod, 1e-12, 1.0)
        self.alpha_bar.setData(t, alpha_bar)
        self.snr.setData(t, alpha_bar / np.clip(1 - alpha_bar, 1e-12, None))
        self.t.setMaximum(schedule.num_train_timesteps - 1)
        self._update()

    def _update(self) -> None:
        schedule = self.schedule()
        t = min(self.t.value(), schedule.num_train_timesteps - 1)
        self.marker.setValue(t)
        alpha_bar = schedule.alpha_bar(t)
        snr = alpha_bar / max(1 - alpha_bar, 1e-12)
        self.readout.setText(
            f"t = {t}:  alpha-bar = {alpha_bar:.4g}, signal x{alpha_bar**0.5:.3f} + noise "
            f"x{(1 - alpha_bar) ** 0.5:.3f}, SNR = {snr:.3g}"
        )
        if self._x_0 is None or self._noise is None:
            self.set_image(None)
            return
        x_t = schedule.q_sample(self._x_0, t, self._noise)
        self.noised.show_image(np.clip(np.round((x_t + 1) * 127.5), 0, 255).astype(np.uint8))
