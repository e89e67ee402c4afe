"""Hostile input on the command line: one line on stderr and exit 2, within a second of the
start, no foreign program run, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusion_studio.cli import main
from diffusion_studio.core.resources import sample_images
from tests.helpers import BAD_CONFIG

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 16 16
%%EndComments
newpath 0 0 moveto 16 0 lineto 16 16 lineto closepath fill
showpage
%%EOF
"""


def run(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def one_line(code: int, err: str) -> bool:
    return code == 2 and err.count("\n") == 1 and "Traceback" not in err


def fake_ghostscript(folder: Path) -> Path:
    """A `gs` that leaves a marker when it runs; its folder goes first on PATH."""
    marker = folder / "gs-ran"
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    gs.chmod(0o755)
    return marker


def test_an_eps_named_png_never_runs_ghostscript(tmp_path, tiny_model_dir) -> None:
    marker = fake_ghostscript(tmp_path)
    picture = tmp_path / "picture.png"
    picture.write_bytes(EPS)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for flag in ("--image", "--mask"):
        image = picture if flag == "--image" else sample_images()[0]
        mask = ["--mask", str(picture)] if flag == "--mask" else ["--mask-preset", "wide"]
        command = [sys.executable, "-m", "diffusion_studio", "inpaint", "--model"]
        out = ["--steps", "2", "--out", str(tmp_path / "o.png")]
        result = subprocess.run(
            [*command, str(tiny_model_dir), "--image", str(image), *mask, *out],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert "not an image the studio opens" in result.stderr
        assert result.stderr.count("\n") == 1
    assert not marker.exists()  # Ghostscript was never started
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "-n", "100000"],
        ["sample", "-n", "1000000000"],
        ["inpaint", "--mask-preset", "wide", "--jump-n-sample", "100000000"],
        ["inpaint", "--mask-preset", "wide", "--jump-n-sample", "3", "--steps", "1000000"],
        ["sample", "--guidance", "nan"],
        ["sample", "--guidance", "inf"],
        ["sample", "--eta", "nan"],
        ["sample", "--guidance", "1e308"],
        ["sample", "--steps", "0"],
        ["sample", "--seed", "-1"],
        ["sample", "--class", "99"],
    ],
)
def test_requests_over_the_limits_are_refused_at_once(capsys, tmp_path, tiny_model_dir, argv):
    if argv[0] == "inpaint":
        argv = [*argv, "--image", str(sample_images()[0])]
    started = time.monotonic()
    code, err = run(capsys, *argv, "--model", str(tiny_model_dir), "--out", str(tmp_path / "o.png"))
    assert one_line(code, err), err
    assert (
        time.monotonic() - started < 5.0
    )  # no work done: a run of these would take minutes to hours
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "-n", "0"],
        ["eval", "-n", "-5"],
        ["eval", "--steps", "0"],
        ["eval", "--steps", "10,x"],
        ["eval", "--eta", "nan"],
        ["eval", "--eta", "2"],
        ["eval", "--guidance", "nan"],
        ["eval", "--batch", "0"],
    ],
)
def test_bad_evaluation_settings_are_refused(capsys, argv) -> None:
    started = time.monotonic()
    assert one_line(*run(capsys, *argv))
    assert time.monotonic() - started < 5.0  # the embedded model loads; nothing is sampled


@pytest.mark.parametrize("name", BAD_CONFIG)
def test_a_bad_config_value_is_one_line_naming_the_file(
    capsys, tmp_path, tiny_uncond_dir, name
) -> None:
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_uncond_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **BAD_CONFIG[name]}))
    code, err = run(capsys, "info", "--model", str(folder))
    assert one_line(code, err), err
    assert "config.json" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_train_timesteps": "abc"}, "num_train_timesteps must be a whole number"),
        ({"num_train_timesteps": 1}, "num_train_timesteps must be a whole number from 2"),
        ({"beta_end": float("nan")}, "not readable JSON"),
        ({"beta_schedule": "zigzag"}, "beta_schedule 'zigzag' is not supported"),
        ({"trained_betas": ["a", "b"]}, "trained_betas must be a list"),
        ({"clip_sample": "yes"}, "clip_sample must be true or false"),
        ({"prediction_type": 3}, "prediction_type 3 is not supported"),
    ],
)
def test_a_bad_scheduler_config_is_one_line(capsys, tmp_path, tiny_uncond_dir, change, message):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_uncond_dir, folder)
    scheduler = folder / "scheduler_config.json"
    scheduler.write_text(json.dumps({**json.loads(scheduler.read_text()), **change}))
    code, err = run(capsys, "info", "--model", str(folder))
    assert one_line(code, err) and message in err and "scheduler_config.json" in err, err


@pytest.mark.parametrize(
    ("studio", "message"),
    [
        ({"null_class": 99}, "null_class must be an embedding index from 0 to 3"),
        ({"null_class": "x"}, "null_class must be an embedding index"),
        ({"class_names": "abc"}, "class_names must be a list"),
        ({"class_names": ["a", "b"]}, "lists 2 classes but the network has 4"),
        ({"default_class": "zebra"}, "default_class 'zebra' is not one of"),
        ({"name": ["a"]}, "name must be a text"),
    ],
)
def test_a_bad_studio_json_is_one_line(capsys, tmp_path, tiny_model_dir, studio, message):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    path = folder / "diffusion_studio.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **studio}))
    code, err = run(capsys, "info", "--model", str(folder))
    assert one_line(code, err) and message in err and "diffusion_studio.json" in err, err


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_models_sample_inpaint_and_export(capsys, tmp_path, channels) -> None:
    import numpy as np
    from PIL import Image

    from diffusion_studio.core.model_files import save_model
    from diffusion_studio.core.schedule import NoiseSchedule
    from tests.helpers import make_unet

    folder = save_model(make_unet(channels=channels), NoiseSchedule.linear(50), tmp_path / "m")
    mode = {1: "L", 4: "RGBA"}[channels]
    code, err = run(
        capsys,
        "sample",
        "--model",
        str(folder),
        "--steps",
        "3",
        "-n",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "s.png"),
        "--grid",
        str(tmp_path / "g.png"),
        "--save-trajectory",
        str(tmp_path / "t.gif"),
    )
    assert code == 0, err
    assert Image.open(tmp_path / "s-0.png").mode == mode
    assert Image.open(tmp_path / "g.png").mode == mode
    assert Image.open(tmp_path / "t.gif").n_frames == 3
    source = tmp_path / "source.png"
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 100
    Image.fromarray(rgba, "RGBA").save(source)
    code, err = run(
        capsys,
        "inpaint",
        "--model",
        str(folder),
        "--image",
        str(source),
        "--quiet",
        "--mask-preset",
        "half",
        "--steps",
        "3",
        "--jump-n-sample",
        "2",
        "--out",
        str(tmp_path / "i.png"),
        "--save-trajectory",
        str(tmp_path / "i.webp"),
    )
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "i.png"))
    from diffusion_studio.core.images import load_image

    kept = np.asarray(load_image(source, channels=channels))[:, :8]  # alpha over white for grey
    assert result.shape[:2] == (16, 16) and np.array_equal(result[:, :8], kept)
    assert Image.open(tmp_path / "i.webp").mode in ("RGB", "RGBA")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--sampler", "ddpm", "--eta", "0.5"],
            "--eta does nothing with DDPM: it is an option of DDIM",
        ),
        (["--sampler", "ddpm", "--eta", "0"], "--eta does nothing with DDPM"),
        (["--sampler", "ddpm", "--no-use-clipped-model-output"], "an option of DDIM"),
        (["--sampler", "ddim", "--variance", "fixed_large"], "--variance does nothing with DDIM"),
        (["--classifier", "somewhere"], "--classifier guides only with a --classifier-scale"),
    ],
)
def test_a_flag_the_sampler_ignores_is_refused(capsys, tmp_path, tiny_model_dir, flags, says):
    out = tmp_path / "s.png"
    code, err = run(capsys, "sample", "--model", str(tiny_model_dir), "--steps", "2",
                    "--quiet", "--out", str(out), *flags)  # fmt: skip
    assert one_line(code, err) and says in err
    assert not out.exists()


def test_the_options_a_sampler_reads_are_taken_and_recorded(capsys, tmp_path, tiny_model_dir):
    from diffusion_studio.core.record import read_record

    for sampler, flags in (("ddpm", ["--variance", "fixed_large"]), ("ddim", ["--eta", "0.5"])):
        out = tmp_path / f"{sampler}.png"
        code, err = run(capsys, "sample", "--model", str(tiny_model_dir), "--steps", "2",
                        "--quiet", "--out", str(out), "--sampler", sampler, *flags)  # fmt: skip
        assert code == 0, err
        request = read_record(out).request
        assert (request.variance_type, request.eta) == (
            ("fixed_large", 0.0) if sampler == "ddpm" else ("fixed_small", 0.5)
        )


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--mask-preset", "half", "--mask-seed", "3"], "half is not one"),
        (["--mask", "MASK", "--mask-seed", "3"], "a mask file has none"),
        (["--mask-preset", "every-second-pixel", "--invert-mask"], "not a preset"),
    ],
)
def test_mask_flags_that_would_do_nothing_are_refused(capsys, tmp_path, tiny_model_dir, flags,
                                                      says):  # fmt: skip
    from PIL import Image

    Image.new("L", (16, 16), 255).save(tmp_path / "mask.png")
    flags = [str(tmp_path / "mask.png") if f == "MASK" else f for f in flags]
    code, err = run(capsys, "inpaint", "--model", str(tiny_model_dir), "--image",
                    str(sample_images()[0]), "--steps", "2", "--quiet", "--out",
                    str(tmp_path / "o.png"), *flags)  # fmt: skip
    assert one_line(code, err) and says in err, err
