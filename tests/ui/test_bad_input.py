"""Hostile input in the window: one message, the current model and settings kept, nothing
applied from a bad record, a bad crash-restore session never hiding a good one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from diffusion_studio.core.export import METADATA_KEY
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from tests.helpers import BAD_CONFIG


@pytest.mark.parametrize("name", BAD_CONFIG)
def test_a_model_folder_with_a_bad_config_value_is_a_message(
    window, tmp_path, tiny_uncond_dir, name
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_uncond_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **BAD_CONFIG[name]}))
    before, request = window.model, window.panel.request()
    assert not window.load_model_folder(folder)
    assert window.model is before and window.panel.request() == request
    assert window.error.isVisible() and "Could not open the model" in window.error.text()
    assert "config.json" in window.error.text()


def png_with_record(path, text: str):
    info = PngInfo()
    info.add_text(METADATA_KEY, text)
    Image.new("RGB", (16, 16), "white").save(path, pnginfo=info)
    return path


GOOD = SampleRequest(sampler="ddpm", num_inference_steps=7, seed=99).to_dict()
BAD_RECORDS = {
    "not json": "{not json",
    "a list": "[1, 2]",
    "no request": json.dumps({"model": "x"}),
    "request a list": json.dumps({"request": [1]}),
    "steps text": json.dumps({"request": {**GOOD, "num_inference_steps": "many"}}),
    "eta nan": json.dumps({"request": {**GOOD, "eta": float("nan")}}),
    "eta 2": json.dumps({"request": {**GOOD, "eta": 2.0}}),
    "guidance inf": '{"request": {"guidance_scale": Infinity}}',
    "sampler unknown": json.dumps({"request": {**GOOD, "sampler": "euler"}}),
    "spacing unknown": json.dumps({"request": {**GOOD, "timestep_spacing": "sideways"}}),
    "seed negative": json.dumps({"request": {**GOOD, "seed": -3}}),
    "seed huge": json.dumps({"request": {**GOOD, "seed": 10**30}}),
    "batch 0": json.dumps({"request": {**GOOD, "batch_size": 0}}),
    "bool steps": json.dumps({"request": {**GOOD, "num_inference_steps": True}}),
    "deep": '{"request": ' + "[" * 5000 + "]" * 5000 + "}",
    "deep object": json.dumps({"request": GOOD, "x": [[[[[[1]]]]]]}),
    "long model name": json.dumps({"request": GOOD, "model": "m" * 10_000}),
    "inpaint text": json.dumps({"request": GOOD, "inpaint": "yes"}),
    "bad grid row": json.dumps({"request": GOOD, "requests": [{"eta": -1}]}),
    "huge": json.dumps({"request": GOOD, "pad": "x" * 200_000}),
}


@pytest.mark.parametrize("name", BAD_RECORDS)
def test_a_bad_png_record_applies_nothing(window, tmp_path, name) -> None:
    path = png_with_record(tmp_path / "x.png", BAD_RECORDS[name])
    before = window.panel.request()
    assert not window.open_file(path)
    assert window.panel.request() == before
    assert window.error.isVisible() and "x.png" in window.error.text()
    assert window.canvas.source is None  # nor is its picture taken as the source


def test_file_open_of_an_exported_png_restores_its_settings(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    path = png_with_record(tmp_path / "made.png", json.dumps({"request": GOOD, "model": "tiny"}))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.open_image()
    request = window.panel.request()
    assert (request.sampler, request.num_inference_steps, request.seed) == ("ddpm", 7, 99)
    assert "restored" in window.statusBar().currentMessage()


def test_settings_the_panel_cannot_take_are_said(window, tmp_path) -> None:
    record = {"request": {**GOOD, "guidance_scale": 50.0, "class_label": 1}, "model": "tiny"}
    path = png_with_record(tmp_path / "strong.png", json.dumps(record))
    assert window.open_file(path)
    assert "but not guidance scale 50.0" in window.error.text()


def test_a_bad_crash_session_never_hides_a_good_one(qtbot, tmp_path, tiny_model_dir) -> None:
    from PySide6.QtCore import QSettings

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.ui.main_window import MainWindow

    root = tmp_path / "autosave"
    good = root / "session-1-1"
    good.mkdir(parents=True)
    source = np.asarray(Image.open(sample_images()[0]).convert("RGB").resize((16, 16)))
    Image.fromarray(source).save(good / "source.png")
    (good / "state.json").write_text(json.dumps({"saved_at": 100.0, "request": GOOD}))
    hostile = {
        "session-2-2": {"state.json": '{"saved_at": "yesterday", "channels": "x"}'},
        "session-3-3": {"state.json": "[" * 10_000},
        "session-4-4": {"state.json": json.dumps({"saved_at": 300.0, "request": [1]})},
        "session-5-5": {"source.png": b"%!PS-Adobe-3.0 EPSF-3.0\n", "state.json": "{}"},
        "session-6-6": {"mask.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 50},
    }
    for name, files in hostile.items():
        (root / name).mkdir()
        for file, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (root / name / file).write_bytes(data)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        load_model(tiny_model_dir), settings=settings, load_default=False, autosave=root
    )
    qtbot.addWidget(window)
    offered = []
    window.autosave.ask = lambda snapshot: offered.append(snapshot.folder.name) or True
    qtbot.waitUntil(lambda: window.canvas.source is not None, timeout=5000)
    assert offered == ["session-1-1"]
    assert np.array_equal(window.canvas.source, source)
    assert window.panel.request().seed == 99
    window.close()


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_models_run_show_inpaint_and_export(qtbot, window, tmp_path, channels):

    from diffusion_studio.core.model_files import save_model
    from diffusion_studio.core.schedule import NoiseSchedule
    from diffusion_studio.ui.export_dialog import ExportOptions, export_entries
    from tests.helpers import make_unet
    from tests.ui.test_studio import run_and_wait

    folder = save_model(make_unet(channels=channels), NoiseSchedule.linear(50), tmp_path / "m")
    assert window.load_model_folder(folder)
    window.panel.steps.setValue(3)
    window.load_source(sample_images()[0])  # an RGB picture, given the model's channels
    assert window.canvas.source.shape == (16, 16, channels)
    assert window.canvas.composite().shape == (16, 16, 3)
    window.canvas.apply_preset("half")
    window.panel.jump_n_sample.setValue(2)
    result = run_and_wait(qtbot, window)
    assert result.images.shape == (1, 16, 16, channels)
    kept = ~window.canvas.mask
    assert np.array_equal(result.images[0][kept], window.canvas.source[kept])
    options = ExportOptions(tmp_path / "out", trajectory=".gif")
    written = export_entries(window.gallery.entries(), options)
    mode = {1: "L", 4: "RGBA"}[channels]
    assert Image.open(written[0]).mode == mode and len(written) == 4  # image, mask, source, gif
