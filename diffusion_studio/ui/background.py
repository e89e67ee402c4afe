"""Work too slow for the GUI thread and unlike a run (converting a checkpoint and loading the
result): one function on a plain thread at a time, its result or its error handed back as a
signal, which reaches bound slots of the window on the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from diffusion_studio.core.errors import InputError


class Background(QObject):
    """`start(work)` calls work() on its own thread; `done` carries what it returned, `failed`
    one line for a person."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable[[], object]) -> None:
        if self.busy:
            raise RuntimeError("background work is already going")
        self._thread = threading.Thread(target=self._run, args=(work,), name="background")
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the work to end (it cannot be stopped half-way); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.busy

    def _run(self, work: Callable[[], object]) -> None:
        try:
            result = work()
        except (InputError, OSError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # any failure must reach the window, or it waits forever
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.done.emit(result)
