"""Fixtures for the window: a tiny model, throwaway settings, and no thread left running."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from diffusion_studio.core.model_files import load_model
from diffusion_studio.ui.main_window import MainWindow
from diffusion_studio.ui.worker import Sampler


@pytest.fixture(autouse=True, scope="session")
def _fresh_settings(tmp_path_factory: pytest.TempPathFactory):
    """QSettings of the tests go to a temporary folder, never to the developer's config."""
    from PySide6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("settings"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder)


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves an inference thread running (it would abort the process)."""
    yield
    running = [s for s in list(Sampler.instances) if s._thread.isRunning()]
    for sampler in running:
        sampler.shutdown()
    assert not running, f"{len(running)} inference thread(s) still running after the test"


@pytest.fixture(autouse=True)
def _autosave_in_a_temporary_folder(tmp_path, monkeypatch):
    """A window started the way a person starts it (diffusion_studio.ui.app.run) keeps its
    autosave in the test's temporary folder, on every platform."""
    import diffusion_studio.ui.app as app

    monkeypatch.setattr(app, "default_root", lambda: tmp_path / "user-autosave")
    monkeypatch.setattr(app, "default_outputs", lambda: tmp_path / "user-outputs")


@pytest.fixture(autouse=True)
def _quitting_never_asks(monkeypatch):
    """Closing a test's window with results only in memory goes ahead (the test of asking
    sets its own answer)."""
    monkeypatch.setattr(MainWindow, "ask_discard", lambda self, count: True)


@pytest.fixture(autouse=True)
def mask_questions(monkeypatch):
    """Replacing an image under a painted mask asks (a modal dialog would block the test):
    the answers given are "clear" unless a test says otherwise; the questions asked are
    counted."""
    asked = {"answer": "clear", "count": 0}

    def ask(self) -> str:
        asked["count"] += 1
        return asked["answer"]

    monkeypatch.setattr(MainWindow, "ask_mask", ask)
    return asked


@pytest.fixture
def window(qtbot, tmp_path, tiny_model_dir):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(tiny_model_dir), settings=settings, load_default=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()
