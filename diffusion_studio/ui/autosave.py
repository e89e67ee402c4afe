"""Autosave: the source image, the mask and the settings kept on disk as they change, so that a
crash (or a kill -9) loses nothing a person painted.

Each running studio owns a folder ROOT/<session>/ holding a QLockFile. A folder whose lock can
be taken belongs to a studio that died without closing: its work is offered back at the next
start. A clean close removes the studio's own folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import save_png
from diffusion_studio.core.files import atomic_write
from diffusion_studio.core.images import load_image
from diffusion_studio.core.job import fit_source
from diffusion_studio.core.masks import load_mask, resize_mask, save_mask
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.ui.state import StudioState

SAVE_DELAY_MS = 250  # a burst of changes (a stroke, a slider drag) is written once
LOCK = "session.lock"
STATE = "state.json"
SOURCE = "source.png"
MASK = "mask.png"


def default_root() -> Path:
    """Where the autosaves live: the platform's per-user application data folder."""
    location = QStandardPaths.StandardLocation.AppLocalDataLocation
    return Path(QStandardPaths.writableLocation(location)) / "autosave"


@dataclass(frozen=True)
class Snapshot:
    """What a session left behind: its folder, when it was saved, and the work itself."""

    folder: Path
    saved_at: float
    source: np.ndarray | None
    mask: np.ndarray | None
    request: SampleRequest | None
    caption: str
    model_path: str

    @property
    def holds_work(self) -> bool:
        """An image or a painted mask: something a person would miss."""
        return self.source is not None or (self.mask is not None and bool(self.mask.any()))


MAX_STATE_BYTES = 1024 * 1024


def read_snapshot(folder: Path) -> Snapshot | None:
    """The work saved in `folder`, or None if it holds nothing readable.

    Each part is checked on its own (the state against its schema, the images by the safe
    loader), so a damaged state.json still gives back the image and the mask beside it.
    """
    state = _read_state(folder / STATE)
    channels = state.get("channels", 3)
    if channels not in (1, 3, 4) or isinstance(channels, bool):
        channels = 3
    source = mask = request = None
    if (folder / SOURCE).is_file():
        with contextlib.suppress(InputError):
            image = load_image(folder / SOURCE, channels=channels)
            source = np.asarray(image).reshape(image.height, image.width, -1)
    if (folder / MASK).is_file():
        with contextlib.suppress(InputError):
            mask = load_mask(folder / MASK)
    with contextlib.suppress(InputError):
        request = SampleRequest.from_dict(state.get("request"))
    if source is None and mask is None and request is None:
        return None
    saved_at = state.get("saved_at")
    if not isinstance(saved_at, int | float) or isinstance(saved_at, bool):
        saved_at = None
    if saved_at is None or not math.isfinite(saved_at):
        with contextlib.suppress(OSError):
            saved_at = folder.stat().st_mtime
    return Snapshot(
        folder,
        float(saved_at or 0.0),
        source,
        mask,
        request,
        _short_text(state.get("caption"), 1000),
        _short_text(state.get("model_path"), 4096),
    )


def _read_state(path: Path) -> dict:
    """state.json as a dict, or {} if it is missing, too large, not a JSON object, or not a
    regular file (a FIFO would block the start forever)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_STATE_BYTES:
            return {}
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return state if isinstance(state, dict) else {}


def _short_text(value: object, limit: int) -> str:
    return value if isinstance(value, str) and len(value) <= limit else ""


class Autosave(QObject):
    """Keeps the work of a StudioState in ROOT/<session>/ and offers back what a crashed
    session left. `say` shows a message, `warn` a failure (until dismissed); `load_model`
    opens a model folder (True if it did)."""

    def __init__(
        self,
        state: StudioState,
        root: Path,
        *,
        say: Callable[[str], None],
        load_model: Callable[[str], bool],
        warn: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self.say, self.load_model, self.parent_widget = state, say, load_model, parent
        self.warn = warn or say
        self.root = root
        self.folder = root / f"session-{os.getpid()}-{time.time_ns()}"
        with contextlib.suppress(OSError):  # if it cannot be made, each save says so
            self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(self.folder / LOCK))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
        self._lock.tryLock(0)
        self.ask: Callable[[Snapshot], bool] = self._ask_with_a_dialog
        self._timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        for changed in (state.mask_changed, state.source_changed, state.caption_changed):
            changed.connect(self._timer.start)
        state.request_changed.connect(self._timer.start)
        state.model_changed.connect(self._timer.start)

    # --- saving -------------------------------------------------------------------------

    def save_now(self) -> None:
        """Write the current work (image, mask, settings); a failure is said, never raised."""
        self._timer.stop()
        work = self.state
        try:
            source = work.source
            if source is not None:
                save_png(self.folder / SOURCE, source, overwrite=True)
            else:
                (self.folder / SOURCE).unlink(missing_ok=True)
            save_mask(work.mask, self.folder / MASK, overwrite=True)
            state = {
                "saved_at": time.time(),
                "request": work.request.to_dict(),
                "channels": source.shape[2] if source is not None else 3,
                "caption": work.caption,
                "model_path": work.model.info.path if work.model else "",
            }
            text = json.dumps(state, indent=1).encode()
            atomic_write(self.folder / STATE, lambda f: f.write(text), overwrite=True)
        except (OSError, InputError) as exc:
            self.warn(f"Autosave failed: {exc}")

    def close(self) -> None:
        """A clean exit: nothing to restore, so the session's folder goes."""
        self._timer.stop()
        self._lock.unlock()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- restoring ----------------------------------------------------------------------

    def left_behind(self) -> list[Snapshot]:
        """What sessions that died without closing left, newest first (their locks are free)."""
        found = []
        for folder in self.root.glob("session-*"):
            if folder == self.folder or folder.is_symlink() or not folder.is_dir():
                continue  # a link is never followed, nor removed
            lock = QLockFile(str(folder / LOCK))
            lock.setStaleLockTime(0)
            if not lock.tryLock(0):
                continue  # a studio that is running now
            lock.unlock()
            snapshot = read_snapshot(folder)
            if snapshot is not None and snapshot.holds_work:
                found.append(snapshot)
            else:  # nothing loaded, nothing painted, or nothing readable
                shutil.rmtree(folder, ignore_errors=True)
        return sorted(found, key=lambda s: s.saved_at, reverse=True)

    def offer_restore(self) -> bool:
        """Offer back the newest work a crash left (self.ask says yes or no); True if restored.

        Older sessions stay on disk and are offered at the next start: none is dropped unasked.
        """
        sessions = self.left_behind()
        if not sessions:
            return False
        snapshot = sessions[0]
        if not self.ask(snapshot):
            shutil.rmtree(snapshot.folder, ignore_errors=True)
            return False
        self.restore(snapshot)
        shutil.rmtree(snapshot.folder, ignore_errors=True)
        self.save_now()
        return True

    def restore(self, snapshot: Snapshot) -> None:
        work = self.state
        wanted, current = snapshot.model_path, work.model.info.path if work.model else ""
        if wanted and wanted != current and Path(wanted).is_dir():
            self.load_model(wanted)  # the model the work was made for, if it is there
        if snapshot.request is not None:
            work.set_request(snapshot.request)
        if snapshot.source is not None and work.model is not None:
            image, _, _ = fit_source(snapshot.source, work.model.info)
            work.set_source(image, snapshot.caption)
        if snapshot.mask is not None:
            # it may hold strokes: asked about before it is let go, as painted work is
            work.set_mask(resize_mask(snapshot.mask, work.image_size), by_hand=True)
        self.say("The work of the last session is back")

    def _ask_with_a_dialog(self, snapshot: Snapshot) -> bool:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(snapshot.saved_at))
        answer = QMessageBox.question(
            self.parent_widget,
            "Restore your work?",
            "Diffusion Studio did not close properly last time. Restore the image, mask and "
            f"settings you had at {when}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes
