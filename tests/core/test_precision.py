"""The network's precision: bfloat16 autocast where a CPU has it in hardware, float32
elsewhere, chosen per run, recorded, and made again from the record in the same precision;
records written before precision was recorded are float32."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.checks import validate
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import METADATA_KEY, save_png
from diffusion_studio.core.job import Job
from diffusion_studio.core.model import default_precision
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.record import read_record
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import execute


@pytest.fixture
def has_bfloat16(monkeypatch):
    """This CPU as one with bfloat16 instructions (conftest pins float32 for every test)."""
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: True)


def images(model, request: SampleRequest) -> np.ndarray:
    return execute(model, Job.prepare(request, model.info)).images


def test_bfloat16_autocast_keeps_the_sampler_in_float32(tiny_model_dir) -> None:
    model = load_model(tiny_model_dir)
    x = torch.randn(1, 3, 16, 16)
    out32 = model.model_fn(1, 1.0, 1, "float32")(x, 50)
    out16 = model.model_fn(1, 1.0, 1, "bfloat16")(x, 50)
    assert out16.dtype == torch.float32
    assert 0 < (out16 - out32).abs().max() < 0.1  # bfloat16 did run, and came near


def test_auto_is_bfloat16_on_a_cpu_that_has_it_and_float32_elsewhere(
    tiny_model_dir, monkeypatch
) -> None:
    assert load_model(tiny_model_dir).info.precision == "float32"  # conftest: no bfloat16
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: True)
    model = load_model(tiny_model_dir)
    assert model.info.precision == "bfloat16"
    assert default_precision(torch.device("cuda")) == "float32"  # not measured on a GPU
    assert Job.prepare(SampleRequest(), model.info).request.precision == "bfloat16"
    chosen = SampleRequest(precision="float32")
    assert Job.prepare(chosen, model.info).request.precision == "float32"
    monkeypatch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: False)
    assert model.to(torch.device("cpu")).info.precision == "float32"  # the device's, again


def test_auto_runs_in_the_precision_it_resolves_to(tiny_model_dir, has_bfloat16) -> None:
    model = load_model(tiny_model_dir)
    request = SampleRequest(num_inference_steps=4, seed=5, class_label=1)
    auto = images(model, request)
    bfloat16, float32 = (dataclasses.replace(request, precision=p) for p in ("bfloat16", "float32"))
    assert np.array_equal(auto, images(model, bfloat16))
    assert not np.array_equal(auto, images(model, float32))


def test_a_bfloat16_image_is_made_again_from_its_record(
    capsys, tmp_path, tiny_model_dir, has_bfloat16
) -> None:
    out = tmp_path / "b.png"
    argv = ["sample", "--model", str(tiny_model_dir), "--steps", "4", "--seed", "7",
            "--class", "1", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    record = read_record(out)
    assert record.request.precision == "bfloat16"
    assert "Precision: bfloat16" in Image.open(out).text["parameters"]
    model = load_model(tiny_model_dir)
    again = execute(model, record.job(model.info)).images[0]
    assert np.array_equal(again, np.asarray(Image.open(out)))


def test_the_command_line_chooses_the_precision(capsys, tmp_path, tiny_model_dir) -> None:
    base = ["sample", "--model", str(tiny_model_dir), "--steps", "3", "--quiet"]
    for precision in ("float32", "bfloat16"):
        out = tmp_path / f"{precision}.png"
        assert main([*base, "--precision", precision, "--out", str(out)]) == 0
        assert read_record(out).request.precision == precision
    assert main([*base, "--out", str(tmp_path / "auto.png")]) == 0
    assert read_record(tmp_path / "auto.png").request.precision == "float32"  # conftest's CPU
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*base, "--precision", "float16", "--out", str(tmp_path / "x.png")])
    assert "invalid choice: 'float16'" in capsys.readouterr().err
    assert main(["info", "--model", str(tiny_model_dir)]) == 0
    assert "Precision" in capsys.readouterr().out


def test_a_record_from_before_precision_was_recorded_is_float32(tmp_path) -> None:
    old = {"request": {"sampler": "ddim", "num_inference_steps": 5}, "model": "tiny",
           "inpaint": False, "version": "0.1.0"}  # fmt: skip
    path = save_png(tmp_path / "old.png", np.zeros((8, 8, 3), np.uint8), metadata=old)
    assert read_record(path).request.precision == "float32"
    # settings of the window (not a record) that say none leave it to the device
    assert SampleRequest.from_dict({"seed": 1}).precision is None


@pytest.mark.parametrize("value", ["float16", "", 16, True])
def test_a_precision_that_is_not_one_is_refused(tmp_path, value) -> None:
    metadata = {"request": {"precision": value}, "model": "tiny", "version": "0.1.0"}
    path = save_png(tmp_path / "bad.png", np.zeros((8, 8, 3), np.uint8), metadata=metadata)
    with pytest.raises(InputError, match="precision"):
        read_record(path)


def test_bfloat16_on_a_device_without_it_is_refused(tiny_model_dir) -> None:
    model = dataclasses.replace(load_model(tiny_model_dir), device=torch.device("mps"))
    with pytest.raises(InputError, match="bfloat16 does not run on mps"):
        validate(SampleRequest(precision="bfloat16", class_label=0), model)
    validate(SampleRequest(precision="float32", class_label=0), model)


def test_the_record_says_the_precision(tmp_path, tiny_model_dir) -> None:
    model = load_model(tiny_model_dir)
    out = tmp_path / "f.png"
    assert main(["sample", "--model", str(tiny_model_dir), "--steps", "2", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    metadata = json.loads(Image.open(out).text[METADATA_KEY])
    assert metadata["request"]["precision"] == model.info.precision == "float32"
    assert "Precision" not in Image.open(out).text["parameters"]  # float32 goes unsaid
