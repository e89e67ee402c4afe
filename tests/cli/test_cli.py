"""The command line as a person uses it: files out, settings in the PNG, one clear line on error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.generate import SampleRequest
from diffusion_studio.core.masks import save_mask
from diffusion_studio.core.resources import sample_images

FAST = ["--steps", "4", "--quiet"]


def run(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors (a flag that is not a number...)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_sample_writes_one_png_with_its_settings(capsys, tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "cat.png"
    code, stdout, _ = run(
        capsys,
        "sample",
        "--model",
        tiny_model_dir,
        *FAST,
        "--seed",
        42,
        "--class",
        "square",
        "--guidance",
        2.5,
        "--out",
        out,
    )
    assert code == 0 and stdout.split() == [str(out)]
    assert pixels(out).shape == (16, 16, 3)
    metadata = read_png_metadata(out)
    request = SampleRequest.from_dict(metadata["request"])
    assert (request.seed, request.class_label, request.guidance_scale) == (42, 1, 2.5)
    assert "Seed: 42" in Image.open(out).text["parameters"]
    assert Image.open(out).text["parameters"].startswith("square\n")


def test_same_seed_same_image_different_seed_different_image(
    capsys, tmp_path, tiny_model_dir
) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, [7, 7, 8]):
        assert (
            run(
                capsys,
                "sample",
                "--model",
                tiny_model_dir,
                *FAST,
                "--seed",
                seed,
                "--sampler",
                "ddpm",
                "--out",
                path,
            )[0]
            == 0
        )
    assert np.array_equal(pixels(paths[0]), pixels(paths[1]))
    assert not np.array_equal(pixels(paths[0]), pixels(paths[2]))


def test_a_batch_writes_numbered_files_a_grid_and_a_trajectory(
    capsys, tmp_path, tiny_model_dir
) -> None:
    code, stdout, _ = run(
        capsys,
        "sample",
        "--model",
        tiny_model_dir,
        *FAST,
        "-n",
        3,
        "--seed",
        10,
        "--out",
        tmp_path / "s.png",
        "--grid",
        tmp_path / "g.png",
        "--save-trajectory",
        tmp_path / "t.webp",
    )
    assert code == 0
    names = ["s-0.png", "s-1.png", "s-2.png", "g.png", "t.webp"]
    assert [Path(p).name for p in stdout.split()] == names
    # image i of the batch carries the request that makes it alone: seed + i, batch 1
    alone = SampleRequest.from_dict(read_png_metadata(tmp_path / "s-2.png")["request"])
    assert (alone.seed, alone.batch_size) == (12, 1)
    assert (
        run(
            capsys,
            "sample",
            "--model",
            tiny_model_dir,
            *FAST,
            "--seed",
            12,
            "--out",
            tmp_path / "again.png",
        )[0]
        == 0
    )
    np.testing.assert_allclose(pixels(tmp_path / "again.png"), pixels(tmp_path / "s-2.png"), atol=1)
    assert Image.open(tmp_path / "t.webp").n_frames == 4


def test_nothing_is_overwritten_without_force(capsys, tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "a.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "sample", "--model", tiny_model_dir, *FAST, "--out", out)
    assert code == 2 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"precious"
    assert run(capsys, "sample", "--model", tiny_model_dir, *FAST, "--out", out, "--force")[0] == 0
    assert pixels(out).shape == (16, 16, 3)


@pytest.fixture
def source(tmp_path) -> Path:
    """A 48x32 photo-like source, so inpainting must crop and resize it to 16x16."""
    rng = np.random.default_rng(0)
    path = tmp_path / "source.png"
    Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_inpaint_keeps_the_known_pixels(capsys, tmp_path, tiny_model_dir, source) -> None:
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys,
        "inpaint",
        "--model",
        tiny_model_dir,
        *FAST,
        "--image",
        source,
        "--mask-preset",
        "half-left",
        "--jump-length",
        2,
        "--jump-n-sample",
        2,
        "--out",
        out,
    )
    assert code == 0
    assert "48x32 image centre-cropped to 32x32 and resized to 16x16" in err
    from diffusion_studio.core.images import fit_to_size, load_image

    fitted = np.asarray(fit_to_size(load_image(source), (16, 16))[0])
    result = pixels(out)
    assert np.array_equal(result[:, 8:], fitted[:, 8:])  # the right half was known
    assert not np.array_equal(result[:, :8], fitted[:, :8])
    assert read_png_metadata(out)["inpaint"] is True


def test_inpaint_with_a_mask_file_and_invert(capsys, tmp_path, tiny_model_dir, source) -> None:
    keep_white = np.zeros((32, 48), dtype=bool)
    keep_white[:, 24:] = True  # RePaint's convention: white = keep the right half
    save_mask(keep_white, tmp_path / "keep.png")
    out = tmp_path / "out.png"
    assert (
        run(
            capsys,
            "inpaint",
            "--model",
            tiny_model_dir,
            *FAST,
            "--image",
            source,
            "--mask",
            tmp_path / "keep.png",
            "--invert-mask",
            "--jump-n-sample",
            1,
            "--out",
            out,
        )[0]
        == 0
    )
    from diffusion_studio.core.images import fit_to_size, load_image

    fitted = np.asarray(fit_to_size(load_image(source), (16, 16))[0])
    assert np.array_equal(pixels(out)[:, 8:], fitted[:, 8:])


def test_info_describes_the_model(capsys, tiny_model_dir) -> None:
    code, out, _ = run(capsys, "info", "--model", tiny_model_dir)
    assert code == 0
    assert "circle, square, triangle" in out and "16x16" in out and "Device" in out


def test_shipped_sample_images_inpaint(capsys, tmp_path, tiny_model_dir) -> None:
    assert len(sample_images()) >= 6
    assert (
        run(
            capsys,
            "inpaint",
            "--model",
            tiny_model_dir,
            *FAST,
            "--image",
            sample_images()[0],
            "--mask-preset",
            "outer",
            "--jump-n-sample",
            1,
            "--out",
            tmp_path / "x.png",
        )[0]
        == 0
    )


def bad_inputs(tmp_path: Path, model: Path, source: Path) -> dict[str, tuple[list, str]]:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    small_mask = tmp_path / "small-mask.png"
    save_mask(np.ones((5, 7), dtype=bool), small_mask)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in model.iterdir():
        (corrupt / f.name).write_bytes(f.read_bytes())
    weights = corrupt / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    inpaint = ["inpaint", "--model", model, *FAST, "--out", tmp_path / "o.png"]
    sample = ["sample", "--model", model, *FAST, "--out", tmp_path / "o.png"]
    return {
        "missing image": (
            [*inpaint, "--image", tmp_path / "nope.png", "--mask-preset", "wide"],
            "does not exist",
        ),
        "not an image": ([*inpaint, "--image", text, "--mask-preset", "wide"], "not an image"),
        "mask of another size": (
            [*inpaint, "--image", source, "--mask", small_mask],
            "must be the same size",
        ),
        "missing mask": (
            [*inpaint, "--image", source, "--mask", tmp_path / "m.png"],
            "does not exist",
        ),
        "unknown preset": ([*inpaint, "--image", source, "--mask-preset", "swirl"], "swirl"),
        "corrupt weights": (["sample", "--model", corrupt, *FAST], "not a valid safetensors"),
        "missing model": (["sample", "--model", tmp_path / "no-model", *FAST], "does not exist"),
        "steps > T": ([*sample, "--steps", 101], "between 1 and 100"),
        "eta < 0": ([*sample, "--eta", -0.1], "eta must be between 0 and 1"),
        "eta > 1": ([*sample, "--eta", 1.5], "eta must be between 0 and 1"),
        "unknown class": ([*sample, "--class", "hexagon"], "circle, square, triangle"),
        "batch 0": ([*sample, "-n", 0], "batch size"),
        "steps not a number": ([*sample, "--steps", "many"], "invalid int value"),
        "unknown sampler": ([*sample, "--sampler", "euler"], "invalid choice"),
        "no mask": ([*inpaint, "--image", source], "--mask"),
        "bad out suffix": (
            ["sample", "--model", model, *FAST, "--out", tmp_path / "o.jpg"],
            ".png",
        ),
        "unknown device": ([*sample, "--device", "tpu"], "unknown device"),
    }


BAD_INPUT_NAMES = [
    "missing image",
    "not an image",
    "mask of another size",
    "missing mask",
    "unknown preset",
    "corrupt weights",
    "missing model",
    "steps > T",
    "eta < 0",
    "eta > 1",
    "unknown class",
    "batch 0",
    "steps not a number",
    "unknown sampler",
    "no mask",
    "bad out suffix",
    "unknown device",
]


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_is_one_clear_line_and_exit_2(
    capsys, tmp_path, tiny_model_dir, source, name
) -> None:
    args, expected = bad_inputs(tmp_path, tiny_model_dir, source)[name]
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("diffusion-studio") and expected in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_a_real_process_prints_no_traceback(tmp_path, tiny_model_dir) -> None:
    (tmp_path / "sample-0.png").write_bytes(b"")  # bad settings are reported before files
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffusion_studio",
            "sample",
            "--model",
            str(tiny_model_dir),
            "--eta",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "diffusion-studio: error: eta must be between 0 and 1, got 2.0"
    version = subprocess.run(
        [sys.executable, "-m", "diffusion_studio", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("diffusion-studio ")


def test_without_a_model_the_message_says_what_to_do(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(
        "diffusion_studio.core.model.default_model_dir", lambda: tmp_path / "absent"
    )
    code, _, err = run(capsys, "sample", *FAST)
    assert code == 2 and "--model" in err


def test_exported_settings_reproduce_the_image(capsys, tmp_path, tiny_model_dir) -> None:
    first = tmp_path / "first.png"
    assert (
        run(
            capsys,
            "sample",
            "--model",
            tiny_model_dir,
            "--quiet",
            "--steps",
            6,
            "--sampler",
            "ddim",
            "--eta",
            0.5,
            "--spacing",
            "trailing",
            "--seed",
            99,
            "--class",
            2,
            "--guidance",
            3,
            "--out",
            first,
        )[0]
        == 0
    )
    request = SampleRequest.from_dict(read_png_metadata(first)["request"])
    args = [
        "sample",
        "--model",
        tiny_model_dir,
        "--quiet",
        "--steps",
        request.num_inference_steps,
        "--sampler",
        request.sampler,
        "--eta",
        request.eta,
        "--spacing",
        request.timestep_spacing,
        "--seed",
        request.seed,
        "--class",
        request.class_label,
        "--guidance",
        request.guidance_scale,
        "--out",
        tmp_path / "again.png",
    ]
    assert run(capsys, *args)[0] == 0
    assert np.array_equal(pixels(first), pixels(tmp_path / "again.png"))
    assert json.loads(Image.open(first).text["diffusion-studio"])["model"] == "tiny"
