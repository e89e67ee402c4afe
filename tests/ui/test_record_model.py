"""A reopened PNG finds the model that made it by the hash of its weights: the open one, the
embedded default, or one opened lately; and says so when none has it."""

from __future__ import annotations

import shutil

import pytest

from diffusion_studio.cli import main
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import CLASS_NAMES, make_unet


@pytest.fixture
def other_model(tmp_path):
    """A second tiny model, of other weights, in a folder of its own."""
    studio = {"name": "other", "class_names": CLASS_NAMES}
    unet = make_unet(num_class_embeds=len(CLASS_NAMES) + 1, seed=7)
    return save_model(unet, NoiseSchedule.linear(100), tmp_path / "other", studio=studio)


def made_by(folder, out, *flags) -> None:
    argv = ["sample", "--model", str(folder), "--steps", "3", "--seed", "11", "--quiet",
            "--out", str(out), *flags]  # fmt: skip
    assert main(argv) == 0


def test_a_png_brings_back_a_model_opened_lately(window, tmp_path, other_model, tiny_model_dir):
    made_by(other_model, tmp_path / "o.png", "--guidance", "2")
    assert window.load_model_folder(other_model)  # opened once: remembered
    assert window.load_model_folder(tiny_model_dir)
    assert window.model.info.name == "tiny"
    assert window.open_file(tmp_path / "o.png")
    assert window.model.info.name == "other"
    assert window.panel.request().seed == 11 and window.panel.request().guidance_scale == 2
    assert "with the model that made it, other [" in window.statusBar().currentMessage()


def test_a_png_of_an_unknown_model_says_so(window, tmp_path, other_model) -> None:
    made_by(other_model, tmp_path / "o.png")
    shutil.rmtree(other_model)  # never opened here, and now gone
    assert window.open_file(tmp_path / "o.png")
    assert window.model.info.name == "tiny"
    text = window.error.text()
    assert "made with other [" in text and "open its folder" in text
    assert window.panel.request().seed == 11  # the settings are restored all the same


def test_a_remembered_folder_whose_weights_changed_is_said(
    window, tmp_path, other_model, tiny_model_dir
) -> None:
    made_by(other_model, tmp_path / "o.png")
    assert window.load_model_folder(other_model)
    assert window.recent_models()[0]["path"] == str(other_model.resolve())
    unet = make_unet(num_class_embeds=len(CLASS_NAMES) + 1, seed=8)  # retrained in place
    studio = {"name": "other", "class_names": CLASS_NAMES}
    save_model(unet, NoiseSchedule.linear(100), other_model, studio=studio, overwrite=True)
    assert window.load_model_folder(tiny_model_dir)
    assert window.open_file(tmp_path / "o.png")
    assert "no longer holds the weights of other [" in window.error.text()


def test_a_damaged_list_of_models_is_no_list(window) -> None:
    for value in ("not json", '{"a": 1}', '[1, {"path": 2, "hash": "", "name": ""}]'):
        window.settings.setValue("models/recent", value)
        assert window.recent_models() == []


def test_a_png_of_the_embedded_model_opens_it(window, tmp_path) -> None:
    argv = ["sample", "--steps", "2", "--seed", "4", "--quiet", "--out", str(tmp_path / "d.png")]
    assert main(argv) == 0
    assert window.model.info.name == "tiny"
    assert window.open_file(tmp_path / "d.png")
    assert window.model.info.name == "emoji32"
    assert window.panel.request().seed == 4


def test_open_model_folder_loads_off_the_gui_thread(qtbot, window, other_model, monkeypatch):
    """File > Open model folder: the window goes on while the model loads (a paper's
    checkpoint is gigabytes), Run waits for it, and the model comes in when it is ready."""
    import threading

    from diffusion_studio.ui import models

    release, threads = threading.Event(), []

    def slow_load(folder, device):
        threads.append(threading.current_thread())
        release.wait(10)
        return load(folder, device)

    load = models.load_model
    monkeypatch.setattr(models, "load_model", slow_load)
    window.open_model_folder(other_model)
    qtbot.waitUntil(lambda: bool(threads), timeout=5000)
    assert threads[0] is not threading.main_thread() and window.model.info.name == "tiny"
    window.run()  # refused while it loads: one message, no run
    assert not window.sampler.running and "is loading" in window.error.text()
    release.set()
    qtbot.waitUntil(lambda: window.model.info.name == "other", timeout=10000)
    assert not window.error.isVisible()


def test_a_model_folder_that_does_not_load_keeps_the_model_and_says_so(qtbot, window, tmp_path):
    window.open_model_folder(tmp_path)  # no config.json
    qtbot.waitUntil(lambda: window.error.isVisible(), timeout=10000)
    assert "Could not open the model" in window.error.text()
    assert window.model.info.name == "tiny" and not window.opener.busy
