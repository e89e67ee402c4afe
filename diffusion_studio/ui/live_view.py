"""The live view: x_t and the predicted x_0 side by side, the noise schedule with the run's
timesteps, the path of the run through the timesteps (RePaint's jumps back show there), and
a slider that scrubs every recorded step once the run is over."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
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
from diffusion_studio.ui.live_plots import GuidancePlot, PathPlot, SchedulePlot
from diffusion_studio.ui.worker import Shown, compose

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
PLOT_INTERVAL_S = 0.1  # the plots follow a run at 10 Hz: they cost more to draw than images
TURN_MS = 4  # between two drawings of a live frame: a quarter of a 60 Hz frame
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
        self.fork_steps.setSpecialValueText("1 step")  # shown at the minimum, 1
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
        self.fork_bar = QWidget(enabled=False)  # on the slider's row, enabled when it scrubs:
        self.fork_bar.setLayout(fork)  # always there, so a run's end lays nothing out again
        fork.setContentsMargins(0, 0, 0, 0)
        scrubbing = QHBoxLayout()
        scrubbing.addWidget(self.scrub, 1)
        scrubbing.addWidget(self.fork_bar)
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
        layout.addLayout(scrubbing)
        layout.addLayout(plots, 1)
        self.scrub.valueChanged.connect(self._on_scrub)
        self.fork_button.clicked.connect(lambda: self.fork_requested.emit(self.scrub.value()))
        self._trajectory: Trajectory | None = None
        self._image: int | None = None
        self._plotted = 0.0
        self._plot_frame: Frame | None = None
        self._run_timesteps: list[int] = []
        self._x0_image: np.ndarray | None = None
        self._shown: Frame | None = None  # the frame on screen
        # Live, each drawing waits for a turn of the event loop of its own (Qt delivers all
        # the events posted in a turn before a timer or an input gets in, so drawings of one
        # turn add up to one long pause), a few ms after the one before, so that what waits
        # gets in between: by name, the latest state drawn when its turn comes.
        self._pending: dict[str, Callable[[], None]] = {}
        self._next_turn = QTimer(self, singleShot=True, interval=TURN_MS)
        self._next_turn.timeout.connect(self._draw_one)

    def _in_a_turn(self, name: str, draw: Callable[[], None]) -> None:
        self._pending.setdefault(name, draw)
        if not self._next_turn.isActive():
            self._next_turn.start()

    def _draw_one(self) -> None:
        """The drawing waiting longest; the next one's turn after it."""
        if self._pending:
            self._pending.pop(next(iter(self._pending)))()
        if self._pending:
            self._next_turn.start()

    def _draw_pending(self) -> None:
        """Everything waiting for a turn, now (the run is over: a scrub draws at once)."""
        while self._pending:
            self._draw_one()
        self._next_turn.stop()

    def start_run(self, timesteps: list[int], guided: bool = False) -> None:
        """A new run: the path of its network calls, no scrubbing until it ends (the slider
        follows the steps meanwhile); the guidance plot when a classifier guides it."""
        self._trajectory = None
        self.fork_bar.setEnabled(False)
        self.guidance.reset()
        self.guidance.setVisible(guided)
        self.scrub.setEnabled(False)
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, len(timesteps) - 1))
        self.scrub.setValue(0)
        self.scrub.blockSignals(False)
        self._pending.clear()  # an earlier run's drawings
        self._plot_frame = None
        self._run_timesteps = timesteps
        # new ranges redraw a plot's axes: each plot in a turn of its own
        self._in_a_turn("timesteps", lambda: self.schedule.set_run(self._run_timesteps))
        self._in_a_turn("path", lambda: self.path.set_path(self._run_timesteps))
        self.caption.setText(RUNNING)

    def show_frame(self, shown: Shown) -> None:
        """A frame whose grids the worker composed (the GUI thread only draws)."""
        frame = shown.frame
        self._shown = frame
        self.x_t.show_image(shown.x_t)
        self._x0_image = shown.x0_pred
        self._in_a_turn("x0", self._show_x0)  # x_t's drawing and x_0's are not one long turn
        now = time.monotonic()
        if now - self._plotted >= PLOT_INTERVAL_S or frame.index == frame.total - 1:
            self._plotted = now
            self._plot_frame = frame
            self._in_a_turn("marks", self._plot)
        if self._trajectory is None:  # live, not scrubbing: the idle slider shows how far
            if frame.guidance is not None:
                self.guidance.add(frame.index, frame.guidance)
            self.scrub.blockSignals(True)
            self.scrub.setValue(frame.index)
            self.scrub.blockSignals(False)
        else:
            self._draw_pending()
        self.x_t.set_title(f"x_t: step {frame.index + 1} / {frame.total}, t = {frame.timestep}")

    def _show_x0(self) -> None:
        if self._x0_image is not None:
            self.x0.show_image(self._x0_image)

    def _plot(self) -> None:
        """The plots' marks where the latest plotted frame is."""
        frame = self._plot_frame
        if frame is not None:
            self.schedule.set_current(frame.timestep)
            self.path.set_progress(frame.index + 1)

    def show_image(self, image) -> None:
        """A result without its steps (an image of an earlier session): it alone."""
        self._trajectory = None
        self._pending.clear()
        self._x0_image = None
        self._shown = None
        self.fork_bar.setEnabled(False)
        self.scrub.setEnabled(False)
        self.x_t.show_image(image)
        self.x_t.set_title()
        self.x0.clear_image()
        self.caption.setText("An earlier result: its steps are not kept between sessions.")

    def show_trajectory(self, trajectory: Trajectory, image: int | None = None) -> None:
        """After a run: scrub every recorded step (of one image of the batch, or all)."""
        self._scrub(trajectory, image)
        self._on_scrub(len(trajectory.frames) - 1)

    def finish_run(self, calls: list[int], trajectory: Trajectory, guided: bool) -> None:
        """The run this view followed has ended: scrub it. Its last frame is on screen already
        (the sampler draws it before it tells the run's end), so unless it is not, nothing is
        drawn again: the run's end is a short turn of the event loop."""
        frames = trajectory.frames
        if (
            self._trajectory is not None
            or self._run_timesteps != calls
            or not frames
            or self._shown is not frames[-1]
        ):
            self.start_run(calls, guided)
            self.show_trajectory(trajectory)
            return
        self._scrub(trajectory, None)
        self._on_scrub(len(frames) - 1, draw=False)

    def _scrub(self, trajectory: Trajectory, image: int | None) -> None:
        """The slider over the trajectory's frames, at its last; the guidance plot whole."""
        self._trajectory = trajectory
        self._image = image
        guided = [f for f in trajectory.frames if f.guidance is not None]
        self.guidance.setVisible(bool(guided))
        if guided:  # live, it had the frames drawn; now every one
            self.guidance.reset()
            for frame in guided:
                self.guidance.add(frame.index, frame.guidance)
        frames = trajectory.frames
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, len(frames) - 1))
        self.scrub.setValue(len(frames) - 1)
        self.scrub.blockSignals(False)
        self.scrub.setEnabled(len(frames) > 1)
        self.fork_bar.setEnabled(len(frames) > 1)

    def _on_scrub(self, position: int, draw: bool = True) -> None:
        if self._trajectory is None or not self._trajectory.frames:
            return
        frame = self._trajectory.frames[position]
        if draw:
            self.show_frame(compose(frame, self._image))
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
