"""Records that leak nothing: a PNG names its model by name and the short hash of its weights
(as A1111 does), never by the folder it was opened from; older records that named a folder
still read."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import METADATA_KEY, save_png
from diffusion_studio.core.record import read_record
from diffusion_studio.core.resources import sample_images
from diffusion_studio.core.write import copied_outputs, write


def short_hash(folder) -> str:
    weights = folder / "diffusion_pytorch_model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:10]


def test_a_png_names_its_model_by_hash_and_no_folder(capsys, tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "i.png"
    argv = ["inpaint", "--model", str(tiny_model_dir), "--image", str(sample_images()[0]),
            "--mask-preset", "half", "--steps", "2", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    data = out.read_bytes()
    for leak in (str(tiny_model_dir), str(tiny_model_dir.parent), str(tmp_path.parent)):
        assert leak.encode() not in data
    record = read_record(out)
    assert (record.model, record.model_hash) == ("tiny", short_hash(tiny_model_dir))
    metadata = json.loads(Image.open(out).text[METADATA_KEY])
    assert "model_path" not in metadata and metadata["model_hash"] == short_hash(tiny_model_dir)
    assert f"Model hash: {short_hash(tiny_model_dir)}" in Image.open(out).text["parameters"]


def test_an_earlier_record_with_a_folder_still_reads(tmp_path) -> None:
    request = {"sampler": "ddim", "num_inference_steps": 5, "seed": 3}
    old = {"request": request, "model": "tiny", "model_path": "/home/someone/models/tiny",
           "inpaint": False, "version": "0.1.0"}  # fmt: skip
    path = save_png(tmp_path / "00001-3.png", np.zeros((8, 8, 3), np.uint8), metadata=old)
    record = read_record(path)
    assert record.model == "tiny" and record.model_hash == ""
    copied = write(copied_outputs(path, tmp_path / "again", "00001"))
    assert b"/home/someone" not in copied[0].read_bytes()


@pytest.mark.parametrize("value", ["zz", "0x12", 12, "a" * 65])
def test_a_hash_that_is_not_one_is_refused(tmp_path, value) -> None:
    metadata = {"request": {}, "model": "tiny", "model_hash": value, "version": "0.1.0"}
    path = save_png(tmp_path / "bad.png", np.zeros((8, 8, 3), np.uint8), metadata=metadata)
    with pytest.raises(InputError, match="model_hash"):
        read_record(path)
