"""The live view: x_t and the predicted x_0 side by side, the noise schedule with the run's
timesteps, the path of the run through the timesteps (RePaint's jumps back show there), and
a slider that scrubs every recorded step once the run is over."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.images import to_rgb
from diffusion_studio.core.result import Frame, Trajectory
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.ui.worker import Shown, compose

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
PLOT_INTERVAL_S = 0.1  # the plots follow a run at 10 Hz: they cost more to draw than images
RUNNING = (
    "Running: each step's sample x_t and the network's prediction of the clean image x_0 as "
    "they come; scrub every step when it ends."
)


class ImagePane(pg.GraphicsLayoutWidget):
    """One titled image, drawn with fixed levels (no per-frame scan) and nearest scaling."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(None)
        self.setMinimumSize(140, 140)
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMouse=True)
        self.view.setMenuEnabled(False)
        self.view.disableAutoRange()  # fitted when the size changes, not at every frame
        self.title = title
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        self._shape: tuple[int, ...] | None = None
        self.label = pg.LabelItem(title, size="10pt")
        self.addItem(self.label, row=1, col=0)

    def set_title(self, text: str | None = None) -> None:
        """The line under the image (its own title when None): drawn in the pane's scene, so a
        new one each frame costs no relayout of the window (a QLabel's would)."""
        self.label.setText(self.title if text is None else text)

    def show_image(self, image: np.ndarray) -> None:
        """(H, W, C) uint8; a grey image is shown as grey, an RGBA one over white."""
        image = image[..., 0] if image.shape[-1] == 1 else to_rgb(image)
        self.image.setImage(image, autoLevels=False, levels=(0, 255))
        if image.shape != self._shape:  # fit the view only when the size changes
            self._shape = image.shape
            self.view.autoRange(padding=0.02)

    def clear_image(self) -> None:
        self.image.clear()
        self._shape = None


def cache_frame(plot: pg.PlotItem) -> None:
    """Keep a plot's axes, grid and title as pixmaps: what moves during a run (a marker, a
    growing curve) is then drawn over them, not the whole plot again (Qt redraws them only
    when they change: a new range, a resize)."""
    for axis in plot.axes.values():
        axis["item"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def fixed_range(plot: pg.PlotItem, x_end: float, y_end: float) -> None:
    """The view from 0 to these ends, set once (which turns pyqtgraph's auto-range off: it
    would measure the data again at every frame and move the view, which throws away the
    cached drawings)."""
    plot.setRange(xRange=(0, x_end), yRange=(0, y_end), padding=0.03)


class SchedulePlot(pg.PlotWidget):
    """alpha-bar and beta over t, the run's timesteps marked, the current one moving."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setMinimumHeight(140)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "timestep t")
        plot.setTitle(
            "<span style='color:#2a7fd4'>alpha-bar</span>, <span style='color:#d4802a'>beta</span>",
            size="9pt",
        )
        self.setToolTip(
            "The noise schedule: alpha-bar (the share of the signal left at t) and beta over"
            " its maximum. The dots are the timesteps this run visits; the line is the current"
            " one."
        )
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        cache_frame(plot)
        self.alpha_bar = plot.plot(pen=pg.mkPen("#2a7fd4", width=2))
        self.beta = plot.plot(pen=pg.mkPen("#d4802a", width=2))
        for static in (self.alpha_bar, self.beta):  # only the marker moves during a run
            static.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.marks = pg.ScatterPlotItem(size=5, brush=pg.mkBrush("#444"), pen=None)
        self.marks.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.addItem(self.marks)
        self.current = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0308a", width=2))
        self.current.setVisible(False)
        plot.addItem(self.current)
        self._schedule: NoiseSchedule | None = None

    def set_schedule(self, schedule: NoiseSchedule) -> None:
        self._schedule = schedule
        t = np.arange(schedule.num_train_timesteps)
        fixed_range(self.getPlotItem(), t[-1], 1.0)
        self.alpha_bar.setData(t, schedule.alphas_cumprod)
        self.beta.setData(t, schedule.betas / schedule.betas.max())
        self.marks.clear()
        self.current.setVisible(False)

    def set_run(self, timesteps: list[int]) -> None:
        if self._schedule is None:
            return
        ts = np.asarray(sorted(set(timesteps)))
        self.marks.setData(ts, self._schedule.alphas_cumprod[ts])

    def set_current(self, timestep: int | None) -> None:
        self.current.setVisible(timestep is not None)
        if timestep is not None:
            self.current.setValue(timestep)


class PathPlot(pg.PlotWidget):
    """The timestep of every network call: a staircase down, with RePaint's jumps back up."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setMinimumHeight(140)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "network call")
        plot.setLabel("left", "timestep")
        plot.setTitle("timesteps", size="9pt")
        self.setToolTip(
            "The timestep of every network call: a staircase down to 0; RePaint's resampling"
            " jumps back up and comes down again."
        )
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        cache_frame(plot)
        self.path = plot.plot(pen=pg.mkPen("#2a7fd4", width=1.5))
        self.path.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.done = plot.plot(pen=pg.mkPen("#c0308a", width=2.5))
        self._timesteps: np.ndarray = np.zeros(0)

    def set_path(self, timesteps: list[int]) -> None:
        self._timesteps = np.asarray(timesteps)
        fixed_range(self.getPlotItem(), max(1, len(timesteps) - 1), max(timesteps, default=1))
        self.path.setData(np.arange(len(timesteps)), self._timesteps)
        self.done.setData([], [])

    def set_progress(self, calls: int) -> None:
        calls = min(calls, len(self._timesteps))
        self.done.setData(np.arange(calls), self._timesteps[:calls])


class GuidancePlot(pg.PlotWidget):
    """Classifier guidance's push at every network call: the RMS of s grad log p(y | x_t), so
    a person sees when the classifier steers (shown only for a classifier-guided run)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=None)
        self.setMinimumHeight(140)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "network call")
        plot.setTitle("classifier guidance", size="9pt")
        self.setToolTip(
            "How hard the classifier pushes at each step: the root mean square of its scaled "
            "gradient, s grad log p(y | x_t). High-noise steps push little when the classifier "
            "cannot yet see the class."
        )
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        cache_frame(plot)
        self.norms = plot.plot(pen=pg.mkPen("#2a9d4a", width=2))
        self._calls: list[int] = []
        self._values: list[float] = []

    def reset(self) -> None:
        self._calls, self._values = [], []
        self.norms.setData([], [])

    def add(self, call: int, value: float) -> None:
        self._calls.append(call)
        self._values.append(value)
        self.norms.setData(self._calls, self._values)


class LiveView(QWidget):
    """x_t | predicted x_0, the schedule and path plots, and the scrub slider."""

    scrubbed = Signal(int)  # the frame shown, an index into the trajectory
    fork_requested = Signal(int)  # continue the run shown from this frame (its index)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.x_t = ImagePane("x_t: the sample")
        self.x0 = ImagePane("predicted x_0")
        self.schedule = SchedulePlot()
        self.path = PathPlot()
        self.guidance = GuidancePlot()
        self.guidance.setVisible(False)
        self.scrub = QSlider(Qt.Orientation.Horizontal, enabled=False)
        self.scrub.setToolTip("Scrub through every recorded step of the run")
        self.caption = QLabel("No run yet: paint a mask or not, then Run (Ctrl+Enter).")
        self.caption.setWordWrap(True)
        # two lines from the start: the running caption's two lines then lay nothing out again
        self.caption.setMinimumHeight(2 * self.caption.fontMetrics().lineSpacing())
        self.fork_steps = QSpinBox(minimum=1, maximum=100_000, suffix=" steps")
        self.fork_steps.setToolTip(
            "The steps after this one, respaced from its timestep (as many as the run had left: "
            "it goes on as it did)"
        )
        self.fork_button = QPushButton("Continue from this step")
        self.fork_button.setToolTip(
            "Go on from the step shown with the panel's settings (sampler, eta, guidance, class, "
            "classifier scale): unchanged, the run ends as it did; the fork goes in the gallery "
            "beside it"
        )
        fork = QHBoxLayout()
        fork.addWidget(self.fork_button)
        fork.addWidget(self.fork_steps)
        fork.addStretch(1)
        self.fork_bar = QWidget()
        self.fork_bar.setLayout(fork)
        fork.setContentsMargins(0, 0, 0, 0)
        self.fork_bar.setVisible(False)
        images = QHBoxLayout()
        images.addWidget(self.x_t)
        images.addWidget(self.x0)
        plots = QHBoxLayout()
        plots.addWidget(self.schedule)
        plots.addWidget(self.path)
        plots.addWidget(self.guidance)
        layout = QVBoxLayout(self)
        layout.addLayout(images, 3)
        layout.addWidget(self.caption)
        layout.addWidget(self.scrub)
        layout.addWidget(self.fork_bar)
        layout.addLayout(plots, 1)
        self.scrub.valueChanged.connect(self._on_scrub)
        self.fork_button.clicked.connect(lambda: self.fork_requested.emit(self.scrub.value()))
        self._trajectory: Trajectory | None = None
        self._image: int | None = None
        self._plotted = 0.0
        self._plot_frame: Frame | None = None
        self._plot_later = QTimer(self, singleShot=True, interval=0)
        self._plot_later.timeout.connect(self._plot)
        self._run_timesteps: list[int] = []
        self._new_run_later = QTimer(self, singleShot=True, interval=0)
        self._new_run_later.timeout.connect(self._plot_new_run)
        self._x0_image: np.ndarray | None = None
        self._x0_later = QTimer(self, singleShot=True, interval=0)
        self._x0_later.timeout.connect(self._show_x0)

    def start_run(self, timesteps: list[int], guided: bool = False) -> None:
        """A new run: the path of its network calls, no scrubbing until it ends (the slider
        follows the steps meanwhile); the guidance plot when a classifier guides it."""
        self._trajectory = None
        self.fork_bar.setVisible(False)
        self.guidance.reset()
        self.guidance.setVisible(guided)
        self.scrub.setEnabled(False)
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, len(timesteps) - 1))
        self.scrub.setValue(0)
        self.scrub.blockSignals(False)
        self._plot_later.stop()
        self._plot_frame = None
        self._run_timesteps = timesteps
        self._new_run_later.start()  # new ranges redraw the axes: in a turn of their own
        self.caption.setText(RUNNING)

    def _plot_new_run(self) -> None:
        """The plots of the run start_run began: its timesteps marked, its path."""
        self._new_run_later.stop()
        self.schedule.set_run(self._run_timesteps)
        self.path.set_path(self._run_timesteps)

    def show_frame(self, shown: Shown) -> None:
        """A frame whose grids the worker composed (the GUI thread only draws)."""
        frame = shown.frame
        self.x_t.show_image(shown.x_t)
        self._x0_image = shown.x0_pred
        if self._trajectory is not None:
            self._show_x0()
        elif not self._x0_later.isActive():  # live: in a turn of the event loop of its own,
            self._x0_later.start()  # so that x_t's drawing and x_0's are not one long turn
        now = time.monotonic()
        if now - self._plotted >= PLOT_INTERVAL_S or frame.index == frame.total - 1:
            self._plotted = now
            self._plot_frame = frame
            if self._trajectory is not None:
                self._plot()
            elif not self._plot_later.isActive():  # live: drawn in a turn of the event loop
                self._plot_later.start()  # of their own, so no one turn draws it all
        if self._trajectory is None:  # live, not scrubbing: the idle slider shows how far
            if frame.guidance is not None:
                self.guidance.add(frame.index, frame.guidance)
            self.scrub.blockSignals(True)
            self.scrub.setValue(frame.index)
            self.scrub.blockSignals(False)
        self.x_t.set_title(f"x_t: step {frame.index + 1} / {frame.total}, t = {frame.timestep}")

    def _show_x0(self) -> None:
        self._x0_later.stop()
        if self._x0_image is not None:
            self.x0.show_image(self._x0_image)

    def _plot(self) -> None:
        """The plots' marks where the latest plotted frame is."""
        if self._new_run_later.isActive():  # the run's plots first
            self._plot_new_run()
        frame = self._plot_frame
        if frame is not None:
            self.schedule.set_current(frame.timestep)
            self.path.set_progress(frame.index + 1)

    def show_image(self, image) -> None:
        """A result without its steps (an image of an earlier session): it alone."""
        self._trajectory = None
        self._x0_later.stop()
        self._x0_image = None
        self.fork_bar.setVisible(False)
        self.scrub.setEnabled(False)
        self.x_t.show_image(image)
        self.x_t.set_title()
        self.x0.clear_image()
        self.caption.setText("An earlier result: its steps are not kept between sessions.")

    def show_trajectory(self, trajectory: Trajectory, image: int | None = None) -> None:
        """After a run: scrub every recorded step (of one image of the batch, or all)."""
        self._trajectory = trajectory
        self._x0_later.stop()
        guided = [f for f in trajectory.frames if f.guidance is not None]
        self.guidance.setVisible(bool(guided))
        self.guidance.reset()
        for frame in guided:
            self.guidance.add(frame.index, frame.guidance)
        self._image = image
        frames = trajectory.frames
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, len(frames) - 1))
        self.scrub.setValue(len(frames) - 1)
        self.scrub.blockSignals(False)
        self.scrub.setEnabled(len(frames) > 1)
        self.fork_bar.setVisible(len(frames) > 1)
        self._on_scrub(len(frames) - 1)

    def _on_scrub(self, position: int) -> None:
        if self._trajectory is None or not self._trajectory.frames:
            return
        shown = compose(self._trajectory.frames[position], self._image)
        self.show_frame(shown)
        frame = shown.frame
        recorded = len(self._trajectory.frames)
        memory = self._trajectory.nbytes / 2**20
        self.caption.setText(
            f"step {frame.index + 1} / {frame.total}, t = {frame.timestep}  "
            f"(scrubbing {recorded} recorded steps, {memory:.1f} MB)"
        )
        self.fork_button.setEnabled(position < recorded - 1)  # the last step: nothing left
        self.scrubbed.emit(position)

    @property
    def trajectory(self) -> Trajectory | None:
        return self._trajectory
