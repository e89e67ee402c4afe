"""The command line as a person uses it: files out, settings in the PNG, one clear line on error."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.images import fit_to_size, load_image
from diffusion_studio.core.masks import save_mask
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.resources import sample_images
from tests.helpers import CLASS_NAMES


def run(capsys, command: str, **paths) -> tuple[int, str, str]:
    """Run `diffusion-studio COMMAND --key path ...`; returns (exit code, stdout, stderr).

    `command` is split on spaces; paths come as keywords (save_trajectory= is
    --save-trajectory), so names with spaces survive.
    """
    argv = command.split()
    for key, value in paths.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors (a flag that is not a number...)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def fitted(source: Path) -> np.ndarray:
    return np.asarray(fit_to_size(load_image(source), (16, 16))[0])


def test_sample_writes_one_png_with_its_settings(capsys, tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "cat.png"
    code, stdout, _ = run(
        capsys,
        "sample --steps 4 --quiet --seed 42 --class square --guidance 2.5",
        model=tiny_model_dir,
        out=out,
    )
    assert code == 0 and stdout.split() == [str(out)]
    assert pixels(out).shape == (16, 16, 3)
    request = SampleRequest.from_dict(read_png_metadata(out)["request"])
    assert (request.seed, request.class_label, request.guidance_scale) == (42, 1, 2.5)
    parameters = Image.open(out).text["parameters"]
    assert parameters.startswith("square\n") and "Seed: 42" in parameters


def test_same_seed_same_image_different_seed_different_image(
    capsys, tmp_path, tiny_model_dir
) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, [7, 7, 8]):
        command = f"sample --steps 4 --quiet --sampler ddpm --seed {seed}"
        assert run(capsys, command, model=tiny_model_dir, out=path)[0] == 0
    assert np.array_equal(pixels(paths[0]), pixels(paths[1]))
    assert not np.array_equal(pixels(paths[0]), pixels(paths[2]))


def test_a_batch_writes_numbered_files_a_grid_and_a_trajectory(
    capsys, tmp_path, tiny_model_dir
) -> None:
    code, stdout, _ = run(
        capsys,
        "sample --steps 4 --quiet -n 3 --seed 10",
        model=tiny_model_dir,
        out=tmp_path / "s.png",
        grid=tmp_path / "g.png",
        save_trajectory=tmp_path / "t.webp",
    )
    assert code == 0
    names = ["s-10.png", "s-11.png", "s-12.png", "t.webp", "g.png"]  # STEM-SEED.png
    assert [Path(p).name for p in stdout.split()] == names
    # image i of the batch carries the request that makes it alone: seed + i, batch 1
    alone = SampleRequest.from_dict(read_png_metadata(tmp_path / "s-12.png")["request"])
    assert (alone.seed, alone.batch_size) == (12, 1)
    again = tmp_path / "again.png"
    assert (
        run(capsys, "sample --steps 4 --quiet --seed 12", model=tiny_model_dir, out=again)[0] == 0
    )
    np.testing.assert_allclose(pixels(again), pixels(tmp_path / "s-12.png"), atol=1)
    assert Image.open(tmp_path / "t.webp").n_frames == 4


def test_nothing_is_overwritten_without_force(capsys, tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "a.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "sample --steps 4 --quiet", model=tiny_model_dir, out=out)
    assert code == 2 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"precious"
    assert run(capsys, "sample --steps 4 --quiet --force", model=tiny_model_dir, out=out)[0] == 0
    assert pixels(out).shape == (16, 16, 3)


@pytest.fixture
def source(tmp_path) -> Path:
    """A 48x32 photo-like source, so inpainting must crop and resize it to 16x16."""
    path = tmp_path / "source.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)).save(path)
    return path


def test_inpaint_keeps_the_known_pixels(capsys, tmp_path, tiny_model_dir, source) -> None:
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys,
        "inpaint --steps 4 --quiet --mask-preset half-left --jump-length 2 --jump-n-sample 2",
        model=tiny_model_dir,
        image=source,
        out=out,
    )
    assert code == 0
    assert "48x32 image centre-cropped to 32x32 and resized to 16x16" in err
    result = pixels(out)
    assert np.array_equal(result[:, 8:], fitted(source)[:, 8:])  # the right half was known
    assert not np.array_equal(result[:, :8], fitted(source)[:, :8])
    assert read_png_metadata(out)["inpaint"] is True


def test_inpaint_with_a_mask_file_and_invert(capsys, tmp_path, tiny_model_dir, source) -> None:
    keep_white = np.zeros((32, 48), dtype=bool)
    keep_white[:, 24:] = True  # RePaint's convention: white = keep the right half
    save_mask(keep_white, tmp_path / "keep.png")
    out = tmp_path / "out.png"
    assert (
        run(
            capsys,
            "inpaint --steps 4 --quiet --invert-mask --jump-n-sample 1",
            model=tiny_model_dir,
            image=source,
            mask=tmp_path / "keep.png",
            out=out,
        )[0]
        == 0
    )
    assert np.array_equal(pixels(out)[:, 8:], fitted(source)[:, 8:])


def test_info_describes_the_model(capsys, tiny_model_dir) -> None:
    code, out, _ = run(capsys, "info", model=tiny_model_dir)
    assert code == 0
    assert "circle, square, triangle" in out and "16x16" in out and "Device" in out


def test_shipped_sample_images_inpaint(capsys, tmp_path, tiny_model_dir) -> None:
    assert len(sample_images()) >= 6
    assert (
        run(
            capsys,
            "inpaint --steps 4 --quiet --mask-preset outer --jump-n-sample 1",
            model=tiny_model_dir,
            image=sample_images()[0],
            out=tmp_path / "x.png",
        )[0]
        == 0
    )


def bad_inputs(tmp_path: Path, model: Path, source: Path) -> dict[str, tuple[str, dict, str]]:
    """name: (command, paths, what the one line must say)."""
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
    out = tmp_path / "o.png"
    paths = {"model": model, "out": out}
    inpaint = {**paths, "image": source}
    return {
        "missing image": (
            "inpaint --mask-preset wide",
            {**paths, "image": tmp_path / "nope.png"},
            "does not exist",
        ),
        "not an image": ("inpaint --mask-preset wide", {**paths, "image": text}, "not an image"),
        "mask of another size": (
            "inpaint",
            {**inpaint, "mask": small_mask},
            "must be the same size",
        ),
        "missing mask": ("inpaint", {**inpaint, "mask": tmp_path / "m.png"}, "does not exist"),
        "unknown preset": ("inpaint --mask-preset swirl", inpaint, "swirl"),
        "corrupt weights": ("sample", {"model": corrupt}, "not a valid safetensors"),
        "missing model": ("sample", {"model": tmp_path / "no-model"}, "does not exist"),
        "steps > T": ("sample --steps 101", paths, "between 1 and 100"),
        "eta < 0": ("sample --eta -0.1", paths, "eta must be between 0 and 1"),
        "eta > 1": ("sample --eta 1.5", paths, "eta must be between 0 and 1"),
        "unknown class": ("sample --class hexagon", paths, "circle, square, triangle"),
        "batch 0": ("sample -n 0", paths, "batch size"),
        "steps not a number": ("sample --steps many", paths, "is not a whole number"),
        "unknown sampler": ("sample --sampler euler", paths, "invalid choice"),
        "no mask": ("inpaint", inpaint, "--mask"),
        "bad out suffix": ("sample", {"model": model, "out": tmp_path / "o.jpg"}, ".png"),
        "unknown device": ("sample --device tpu", paths, "unknown device"),
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
    command, paths, expected = bad_inputs(tmp_path, tiny_model_dir, source)[name]
    subcommand, *flags = command.split()  # the test's own flags come last and win
    code, _, err = run(capsys, " ".join([subcommand, "--steps 4 --quiet", *flags]), **paths)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("diffusion-studio") and expected in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_a_real_process_prints_no_traceback(tmp_path, tiny_model_dir) -> None:
    (tmp_path / "sample-0.png").write_bytes(b"")  # bad settings are reported before files
    command = [
        sys.executable,
        "-m",
        "diffusion_studio",
        "sample",
        "--model",
        str(tiny_model_dir),
        "--eta",
        "2",
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "diffusion-studio: error: eta must be between 0 and 1, got 2.0"
    version = subprocess.run(
        [sys.executable, "-m", "diffusion_studio", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("diffusion-studio ")


def test_without_a_model_the_message_says_what_to_do(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(
        "diffusion_studio.core.model_files.default_model_dir", lambda: tmp_path / "absent"
    )
    code, _, err = run(capsys, "sample --steps 4 --quiet")
    assert code == 2 and "--model" in err


def test_exported_settings_reproduce_the_image(capsys, tmp_path, tiny_model_dir) -> None:
    first = tmp_path / "first.png"
    assert (
        run(
            capsys,
            "sample --quiet --steps 6 --sampler ddim --eta 0.5 --spacing trailing "
            "--seed 99 --class 2 --guidance 3",
            model=tiny_model_dir,
            out=first,
        )[0]
        == 0
    )
    r = SampleRequest.from_dict(read_png_metadata(first)["request"])
    again = tmp_path / "again.png"
    command = (
        f"sample --quiet --steps {r.num_inference_steps} --sampler {r.sampler} "
        f"--eta {r.eta} --spacing {r.timestep_spacing} --seed {r.seed} "
        f"--class {r.class_label} --guidance {r.guidance_scale}"
    )
    assert run(capsys, command, model=tiny_model_dir, out=again)[0] == 0
    assert np.array_equal(pixels(first), pixels(again))
    assert json.loads(Image.open(first).text["diffusion-studio"])["model"] == "tiny"


def test_class_all_makes_a_row_per_class(capsys, tmp_path, tiny_model_dir) -> None:
    code, stdout, _ = run(
        capsys,
        "sample --steps 3 --quiet --class all -n 2 --seed 5",
        model=tiny_model_dir,
        grid=tmp_path / "g.png",
        out=tmp_path / "s.png",
    )
    assert code == 0
    names = [Path(p).name for p in stdout.split()]
    assert names[:2] == ["s-circle-5.png", "s-circle-6.png"] and names[-1] == "g.png"
    assert len(names) == 3 * 2 + 1
    grid = read_png_metadata(tmp_path / "g.png")["grid"]  # 3 rows, 2 columns, labelled
    assert grid["rows"] == CLASS_NAMES and grid["notes"] == ["seed 5", "seed 6"] * 3
    assert grid["cells"] == [[r, c] for r in range(3) for c in range(2)]
    image = pixels(tmp_path / "g.png")
    assert image.shape[0] >= 3 * 96 and (image[:, :20] < 128).any()  # cells enlarged; names drawn
    triangle = SampleRequest.from_dict(read_png_metadata(tmp_path / "s-triangle-6.png")["request"])
    assert (triangle.class_label, triangle.seed) == (2, 6)
    assert len(read_png_metadata(tmp_path / "g.png")["requests"]) == 3 * 2  # one per image


def test_a_misspelt_command_is_not_taken_for_a_file(capsys) -> None:
    code, _, err = run(capsys, "smaple --steps 3")
    assert code == 2 and "invalid choice" in err


def test_version_and_help_answer_without_importing_torch() -> None:
    probe = (
        "import sys\n"
        "from diffusion_studio.cli import main\n"
        "for argv in (['--version'], ['--help'], ['train', '--help'], ['sample', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'PySide6') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_classifier_scales_make_the_columns_of_a_grid(
    capsys, tmp_path, tiny_model_dir, tiny_classifier_dir
) -> None:
    code, stdout, _ = run(
        capsys,
        f"sample --steps 4 --quiet --class all --seed 5 --guidance 0 "
        f"--classifier {tiny_classifier_dir} --classifier-scale 0,20",
        model=tiny_model_dir,
        grid=tmp_path / "g.png",
        out=tmp_path / "s.png",
    )
    assert code == 0
    names = [Path(p).name for p in stdout.split()]
    assert names[:2] == ["s-circle.png", "s-circle-cg20.png"] and len(names) == 3 * 2 + 1
    grid = read_png_metadata(tmp_path / "g.png")["grid"]  # classes x scales
    assert grid["rows"] == CLASS_NAMES and grid["columns"] == ["cg=0", "cg=20"]
    assert not np.array_equal(
        pixels(tmp_path / "s-circle.png"), pixels(tmp_path / "s-circle-cg20.png")
    )
    record = read_png_metadata(tmp_path / "s-square-cg20.png")
    request = SampleRequest.from_dict(record["request"])
    assert (request.class_label, request.classifier_scale, request.guidance_scale) == (1, 20, 0)
    assert record["classifier"] == "tiny classifier"
    weights = tiny_classifier_dir / "diffusion_pytorch_model.safetensors"
    assert record["classifier_hash"] == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert "classifier_path" not in record and str(tmp_path.parent) not in json.dumps(record)
    parameters = Image.open(tmp_path / "s-square-cg20.png").text["parameters"]
    assert parameters.startswith("square\n") and "Classifier scale: 20.0" in parameters
    assert "Classifier: tiny classifier" in parameters
    assert "classifier" not in read_png_metadata(tmp_path / "s-square.png")  # scale 0: unguided


def test_classifier_guidance_flags_that_cannot_work_are_one_line(
    capsys, tmp_path, tiny_model_dir, tiny_uncond_dir, tiny_classifier_dir
) -> None:
    cases = {
        f"--classifier-scale 2 --model {tiny_model_dir}": "needs a classifier",
        f"--classifier-scale nan --classifier {tiny_classifier_dir}": "finite numbers",
        f"--classifier-scale 500 --classifier {tiny_classifier_dir} --model {tiny_model_dir}": (
            "from 0 to 100"
        ),
        f"--classifier-scale 2 --classifier {tiny_classifier_dir} --model {tiny_uncond_dir}": (
            "noise schedule"
        ),
        f"--classifier-scale 2 --classifier {tmp_path} --model {tiny_model_dir}": (
            "not a classifier folder"
        ),
    }
    for flags, message in cases.items():
        code = main(["sample", "--quiet", "--steps", "2", "--out", str(tmp_path / "x.png"),
                     *flags.split()])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, (flags, err)
    assert not (tmp_path / "x.png").exists()


def test_outpaint_grows_the_picture_and_records_its_passes(capsys, tmp_path, tiny_model_dir):
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.outpaint import read_outpaint

    source = sample_images()[0]
    out = tmp_path / "wide.png"
    command = "outpaint --steps 3 --jump-n-sample 1 --quiet --extend right:0.5 --passes 2"
    code, stdout, err = run(capsys, command, model=tiny_model_dir, image=source, out=out)
    assert code == 0 and stdout.split() == [str(out)], err
    assert "16x16 to 32x16 (right +0.5 x2)" in err
    image = pixels(out)
    assert image.shape == (16, 32, 3)
    assert np.array_equal(image[:, :16], fitted(source))
    record = read_outpaint(out, load_model(tiny_model_dir).info)
    assert [g.describe() for g in record.growths] == ["right +0.5"] * 2
    assert "Outpaint: right +0.5, right +0.5" in Image.open(out).text["parameters"]
    # grown again from the stitched canvas, kept at its size
    again = tmp_path / "wider.png"
    code, _, err = run(capsys, "outpaint --steps 3 --jump-n-sample 1 --quiet --extend left:0.25",
                       model=tiny_model_dir, image=out, out=again)  # fmt: skip
    assert code == 0 and pixels(again).shape == (16, 36, 3), err
    assert np.array_equal(pixels(again)[:, 4:], image)
    # made again from its record alone, bit for bit
    remade = tmp_path / "remade.png"
    code, _, err = run(capsys, "outpaint --quiet", model=tiny_model_dir, again=out, out=remade)
    assert code == 0 and np.array_equal(pixels(remade), image), err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("", "--extend SIDE:FRACTION or --zoom-out F"),
        ("--extend right", "SIDE:FRACTION"),
        ("--zoom-out 1", "more than 1"),
        ("--extend right:0.5 -n 2", "-n is not an option of outpaint"),
        ("--extend right:0.5 --passes 65", "--passes is from 1 to 64"),
        ("--extend right:4 --passes 40", "at most 2048 pixels a side"),
        ("--again x.png", "not allowed with argument"),
    ],
)
def test_outpaint_refuses_in_one_line(capsys, tmp_path, tiny_model_dir, flags, message):
    code, _, err = run(capsys, f"outpaint --quiet {flags}", model=tiny_model_dir,
                       image=sample_images()[0], out=tmp_path / "x.png")  # fmt: skip
    assert code == 2 and message in err, err
    assert not (tmp_path / "x.png").exists()


def test_outpaint_again_takes_no_settings_beside_the_record(capsys, tmp_path, tiny_model_dir):
    source = sample_images()[0]
    for flags, message in (("--steps 4", "--steps does nothing with --again"),
                           ("--extend top:0.5", "--extend does nothing with --again")):  # fmt: skip
        code, _, err = run(capsys, f"outpaint {flags}", model=tiny_model_dir, again=source,
                           out=tmp_path / "x.png")  # fmt: skip
        assert code == 2 and message in err, err
    code, _, err = run(
        capsys, "outpaint", model=tiny_model_dir, again=source, out=tmp_path / "x.png"
    )
    assert code == 2 and "holds no record of an outpainting" in err
