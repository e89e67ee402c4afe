"""The precision in the window: "auto" says what it runs in on the model's device, a chosen
one is recorded, an opened PNG brings its own back and Run makes it again bit for bit; a
move to another device keeps the fields."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QSettings

from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.record import read_record
from diffusion_studio.ui.main_window import MainWindow
from tests.ui.test_studio import run_and_wait


def open_window(qtbot, tmp_path, model_dir, name: str) -> MainWindow:
    settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(model_dir), settings=settings, load_default=False,
                        outputs=tmp_path / name)  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_bfloat16_result_comes_back_with_its_precision(
    qtbot, tmp_path, tiny_model_dir, monkeypatch
) -> None:
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: True)
    window = open_window(qtbot, tmp_path, tiny_model_dir, "first")
    assert window.panel.precision.currentText() == "auto (bfloat16)"
    window.panel.steps.setValue(4)
    first = run_and_wait(qtbot, window)
    made = next(p for p in first.written if p.suffix == ".png")
    assert read_record(made).request.precision == "bfloat16"
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: False)
    fresh = open_window(qtbot, tmp_path, tiny_model_dir, "fresh")  # a CPU without it
    assert fresh.panel.precision.currentText() == "auto (float32)"
    assert fresh.open_file(made)
    assert fresh.panel.precision.currentText() == "bfloat16"
    assert fresh.panel.request().precision == "bfloat16"
    again = run_and_wait(qtbot, fresh)
    assert np.array_equal(again.images, first.images)
    fresh.close()
    window.close()


def test_another_device_keeps_the_fields(qtbot, tmp_path, tiny_model_dir, monkeypatch) -> None:
    window = open_window(qtbot, tmp_path, tiny_model_dir, "move")
    panel = window.panel
    panel.class_box.setCurrentIndex(panel.class_box.findData(2))
    panel.guidance.setValue(5.0)
    panel.precision.setCurrentIndex(panel.precision.findData("float32"))
    before, model = panel.request(), window.model
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: True)
    window.move_model(torch.device("cpu"))
    assert window.model is not model and panel.request() == before
    assert panel.precision.itemText(0) == "auto (bfloat16)"
    window.close()
