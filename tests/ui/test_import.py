"""File > Import checkpoint: a guided-diffusion checkpoint becomes a model the window opens,
with its learned variance in the sampler panel; a bad one is a message; the window keeps
drawing while it converts."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QInputDialog

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    pytest.importorskip("guided_diffusion.unet")
from tests.core.test_convert import reference_unet
from tests.ui.test_studio import run_and_wait


def answer_dialogs(monkeypatch, checkpoint, folder, preset="iddpm-cifar10") -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(checkpoint), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: (f"{preset}  (...)", True))


def import_and_wait(qtbot, window) -> None:
    """File > Import checkpoint, then the wait for the importer's report (its busy dialog
    closes in the slots that receive it)."""
    window.import_checkpoint()
    qtbot.waitUntil(lambda: not window._importing.isVisible(), timeout=60_000)


def test_an_imported_checkpoint_opens_and_runs_with_its_learned_variance(
    qtbot, window, tmp_path, monkeypatch
) -> None:
    checkpoint = tmp_path / "cifar10_uncond_50M_500K.pt"
    torch.save(reference_unet("iddpm-cifar10").state_dict(), checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    import_and_wait(qtbot, window)
    assert window.model.info.learns_variance and window.model.info.name == checkpoint.stem
    panel = window.panel
    variances = [panel.variance.itemData(i) for i in range(panel.variance.count())]
    assert "learned_range" in variances and panel.variance.currentData() == "learned_range"
    panel.buttons["ddpm"].setChecked(True)
    panel.steps.setValue(3)
    result = run_and_wait(qtbot, window)
    assert result.images.shape == (1, 32, 32, 3)


def test_a_bad_checkpoint_is_a_message_and_the_model_stays(
    qtbot, window, tmp_path, monkeypatch
) -> None:
    checkpoint = tmp_path / "notes.pt"
    torch.save({"a": torch.zeros(1)}, checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    before = window.model
    import_and_wait(qtbot, window)
    assert window.model is before
    assert "not an OpenAI UNetModel state dict" in window.error.text()


def test_the_window_keeps_its_event_loop_while_a_checkpoint_converts(
    qtbot, window, tmp_path, monkeypatch
) -> None:
    """The conversion waits for a timer of the GUI thread: on the GUI thread it would wait in
    vain. The new model reaches the window on the GUI thread."""
    import diffusion_studio.core.convert as convert

    checkpoint = tmp_path / "cifar10_uncond_50M_500K.pt"
    torch.save(reference_unet("iddpm-cifar10").state_dict(), checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    gui_ticked = threading.Event()
    real = convert.convert_to_folder

    def slow_conversion(*args, **kwargs):
        if not gui_ticked.wait(timeout=10):
            raise RuntimeError("the GUI thread's timer did not fire during the conversion")
        return real(*args, **kwargs)

    monkeypatch.setattr(convert, "convert_to_folder", slow_conversion)
    threads = []
    set_model = window.set_model
    monkeypatch.setattr(
        window, "set_model", lambda m: (threads.append(threading.current_thread()), set_model(m))
    )
    QTimer.singleShot(50, gui_ticked.set)
    import_and_wait(qtbot, window)
    assert not window.error.isVisible(), window.error.text()
    assert window.model.info.name == checkpoint.stem
    assert threads == [threading.main_thread()]


def test_another_checkpoint_imports_with_the_flags_pasted(qtbot, window, tmp_path, monkeypatch):
    from diffusion_studio.ui.models import OTHER
    from tests.core.test_convert_flags import DIFFUSION_FLAGS, MODEL_FLAGS

    checkpoint = tmp_path / "my_run_ema_0.9999_200000.pt"
    torch.save(reference_unet("iddpm-cifar10").state_dict(), checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: (OTHER, True))
    pasted = {"text": f"{MODEL_FLAGS} --num_channels 64"}
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: (pasted["text"], True))
    before = window.model
    import_and_wait(qtbot, window)  # the weights contradict a flag: one message
    assert window.model is before
    assert "--num-channels 64: the weights say 32" in window.error.text()
    pasted["text"] = f"{MODEL_FLAGS}\n{DIFFUSION_FLAGS}"
    import_and_wait(qtbot, window)
    assert window.model.info.name == checkpoint.stem and window.model.info.learns_variance
    assert window.model.schedule.num_train_timesteps == 4000
