"""The live view's plots: the noise schedule with a run's timesteps, the path of a run through
the timesteps, and classifier guidance's push. Drawn for a run that changes them at every
frame: their axes cached and of a steady width, their ranges set once per run."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGraphicsItem, QWidget

from diffusion_studio.core.schedule import NoiseSchedule


def cache_frame(plot: pg.PlotItem) -> None:
    """Keep a plot's axes, grid and title as pixmaps: what moves during a run (a marker, a
    growing curve) is then drawn over them, not the whole plot again (Qt redraws them only
    when they change: a new range, a resize)."""
    for axis in plot.axes.values():
        axis["item"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def steady_axis(plot: pg.PlotItem, widest: str) -> None:
    """The left axis as wide as the widest tick label it will show: pyqtgraph widens it to
    fit new labels, which lays out the plot and then the window again (the longest pause
    of a run's start was one)."""
    axis = plot.getAxis("left")
    width = QFontMetrics(axis.style["tickFont"] or axis.font()).horizontalAdvance(widest)
    axis.setStyle(autoExpandTextSpace=False, tickTextWidth=width)


def fixed_range(plot: pg.PlotItem, x_end: float, y_end: float) -> None:
    """The view from 0 to these ends, set once (which turns pyqtgraph's auto-range off: it
    would measure the data again at every frame and move the view, which throws away the
    cached drawings)."""
    plot.setRange(xRange=(0, x_end), yRange=(0, y_end), padding=0.03)


class RunPlot(pg.PlotWidget):
    """A plot that follows a run: titled, gridded, not dragged by the mouse, its frame cached
    and its left axis of a steady width (`widest`, the widest label it will show)."""

    def __init__(
        self, title: str, bottom: str, tooltip: str, widest: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, background=None)
        self.setMinimumHeight(140)
        plot = self.getPlotItem()
        plot.setLabel("bottom", bottom)
        plot.setTitle(title, size="9pt")
        self.setToolTip(tooltip)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMouseEnabled(x=False, y=False)
        cache_frame(plot)
        steady_axis(plot, widest)


class SchedulePlot(RunPlot):
    """alpha-bar and beta over t, the run's timesteps marked, the current one moving."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            title="<span style='color:#2a7fd4'>alpha-bar</span>, "
            "<span style='color:#d4802a'>beta</span>",
            bottom="timestep t",
            tooltip=(
                "The noise schedule: alpha-bar (the share of the signal left at t) and beta over "
                "its maximum. The dots are the timesteps this run visits; the line is the current "
                "one."
            ),
            widest="0.88",
            parent=parent,
        )
        plot = self.getPlotItem()
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


class PathPlot(RunPlot):
    """The timestep of every network call: a staircase down, with RePaint's jumps back up."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            title="timesteps",
            bottom="network call",
            tooltip=(
                "The timestep of every network call: a staircase down to 0; RePaint's resampling "
                "jumps back up and comes down again."
            ),
            widest="8888",
            parent=parent,
        )
        plot = self.getPlotItem()
        plot.setLabel("left", "timestep")
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


class GuidancePlot(RunPlot):
    """Classifier guidance's push at every network call: the RMS of s grad log p(y | x_t), so
    a person sees when the classifier steers (shown only for a classifier-guided run)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            title="classifier guidance",
            bottom="network call",
            tooltip=(
                "How hard the classifier pushes at each step: the root mean square of its scaled "
                "gradient, s grad log p(y | x_t). High-noise steps push little when the classifier "
                "cannot yet see the class."
            ),
            widest="0.0888",
            parent=parent,
        )
        plot = self.getPlotItem()
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
