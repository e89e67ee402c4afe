"""File > Import checkpoint: a guided-diffusion checkpoint becomes a model the window opens,
with its learned variance in the sampler panel; a bad one is a message."""

from __future__ import annotations

import warnings

import pytest
import torch
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


def test_an_imported_checkpoint_opens_and_runs_with_its_learned_variance(
    qtbot, window, tmp_path, monkeypatch
) -> None:
    checkpoint = tmp_path / "cifar10_uncond_50M_500K.pt"
    torch.save(reference_unet("iddpm-cifar10").state_dict(), checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    window.import_checkpoint()
    assert window.model.info.learns_variance and window.model.info.name == checkpoint.stem
    panel = window.panel
    variances = [panel.variance.itemData(i) for i in range(panel.variance.count())]
    assert "learned_range" in variances and panel.variance.currentData() == "learned_range"
    panel.buttons["ddpm"].setChecked(True)
    panel.steps.setValue(3)
    result = run_and_wait(qtbot, window)
    assert result.images.shape == (1, 32, 32, 3)


def test_a_bad_checkpoint_is_a_message_and_the_model_stays(window, tmp_path, monkeypatch):
    checkpoint = tmp_path / "notes.pt"
    torch.save({"a": torch.zeros(1)}, checkpoint)
    answer_dialogs(monkeypatch, checkpoint, tmp_path)
    before = window.model
    window.import_checkpoint()
    assert window.model is before
    assert "not an OpenAI UNetModel state dict" in window.error.text()
