"""Hostile input through the command line: model folders, weights, images and masks, flags,
training data, settings and outputs, checkpoints, evaluation."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from harness import REFUSED, WRITTEN, Case, q, run_cli
from PIL import Image

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nnewpath 0 0 moveto 16 16 lineto\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TRAIN = "--preset tiny --resolution 16 --steps 2 --batch-size 2 --quiet"


class RunsCode:
    """A pickle that would create a file if it were unpickled with code allowed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def json_edit(name: str, values: dict) -> Callable[[Path], None]:
    """Change some keys of the JSON file `name` of a folder."""

    def change(folder: Path) -> None:
        path = folder / name
        current = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**current, **values}))

    return change


def write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        content = data.encode() if isinstance(data, str) else data
        (folder / name).write_bytes(content)

    return change


def variants(source: Path, into: Path, changes: dict[str, Callable[[Path], None]]) -> dict:
    """A copy of the model folder `source` per change, in `into`: name -> folder."""
    into.mkdir(exist_ok=True)
    folders = {}
    for name, change in changes.items():
        folder = into / name.replace(" ", "-").replace("/", "-")
        shutil.copytree(source, folder)
        change(folder)
        folders[name] = folder
    return folders


def model_folder_cases(p: dict[str, Path], root: Path) -> list[Case]:
    from tests.helpers import BAD_CONFIG

    config = {
        **BAD_CONFIG,
        "sample_size float": {"sample_size": 16.0},
        "sample_size bool": {"sample_size": True},
        "sample_size 0": {"sample_size": 0},
        "sample_size negative": {"sample_size": -16},
        "sample_size null": {"sample_size": None},
        "in_channels text": {"in_channels": "3"},
        "in_channels 0": {"in_channels": 0, "out_channels": 0},
        "in_channels 5": {"in_channels": 5, "out_channels": 5},
        "layers 0": {"layers_per_block": 0},
        "layers 10**9": {"layers_per_block": 10**9},
        "no blocks": {"block_out_channels": []},
        "block types short": {"up_block_types": ["UpBlock2D"]},
        "norm_eps text": {"norm_eps": "tiny"},
        "num_class_embeds text": {"num_class_embeds": "ten"},
        "num_class_embeds 10**9": {"num_class_embeds": 10**9},
        "another class": {"_class_name": "UNet2DConditionModel"},
    }
    sched = "scheduler_config.json"
    folder = {
        "config not JSON": write("config.json", "{nope"),
        "config a list": write("config.json", "[1, 2]"),
        "config nested 100,000 deep": write("config.json", "[" * 100_000),
        "config binary": write("config.json", b"\xff\xfe\x00\x01"),
        "config of 17 MB": write("config.json", " " * (17 * 2**20) + "{}"),
        "no config": lambda f: (f / "config.json").unlink(),
        "no weights": lambda f: (f / "diffusion_pytorch_model.safetensors").unlink(),
        "model_index without unet/": write("model_index.json", "{}"),
        "scheduler not JSON": write(sched, "{"),
        "scheduler T text": json_edit(sched, {"num_train_timesteps": "x"}),
        "scheduler T 1": json_edit(sched, {"num_train_timesteps": 1}),
        "scheduler T 10**9": json_edit(sched, {"num_train_timesteps": 10**9}),
        "scheduler beta NaN": write(sched, '{"beta_end": NaN}'),
        "scheduler beta 2": json_edit(sched, {"beta_end": 2.0}),
        "scheduler schedule zig": json_edit(sched, {"beta_schedule": "zig"}),
        "scheduler prediction x": json_edit(sched, {"prediction_type": "x"}),
        "scheduler variance learned": json_edit(sched, {"variance_type": "learned_range"}),
        "scheduler betas text": json_edit(sched, {"trained_betas": ["a"]}),
        "scheduler betas 1.5": json_edit(sched, {"trained_betas": [0.1, 1.5]}),
        "scheduler clip text": json_edit(sched, {"clip_sample": "no"}),
        "scheduler offset -1": json_edit(sched, {"steps_offset": -1}),
    }
    studio_file = "diffusion_studio.json"
    studio = {
        "null_class 99": {"null_class": 99},
        "null_class -1": {"null_class": -1},
        "null_class text": {"null_class": "none"},
        "class_names a text": {"class_names": "abc"},
        "class_names numbers": {"class_names": [1, 2, 3]},
        "class_names 2 for 4": {"class_names": ["a", "b"]},
        "a class name empty": {"class_names": ["", "b", "c"]},
        "default_class unknown": {"default_class": "zebra"},
        "name a list": {"name": ["x"]},
        "licence of 20,000 characters": {"license": "x" * 20_000},
    }
    bad = root / "bad-models"
    made = variants(p["uncond"], bad, {k: json_edit("config.json", v) for k, v in config.items()})
    cases = [
        Case("model config", f"config.json: {k}", f"info --model {q(str(f))}")
        for k, f in made.items()
    ]
    made = variants(p["uncond"], bad, folder)
    cases += [Case("model folder", k, f"info --model {q(str(f))}") for k, f in made.items()]
    made = variants(p["model"], bad, {k: json_edit(studio_file, v) for k, v in studio.items()})
    cases += [Case("studio JSON", k, f"info --model {q(str(f))}") for k, f in made.items()]
    for what, path in (
        ("a file, not a folder", "thesis.txt"),
        ("missing", "nowhere"),
        ("an empty folder", "images"),
    ):
        cases.append(Case("model folder", what, f"info --model {path}"))
    return cases


def weights_cases(p: dict[str, Path], root: Path, code_marker: Path) -> list[Case]:
    from safetensors.torch import load_file, save_file

    st, bn = "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"
    good = load_file(p["uncond"] / st)
    raw = (p["uncond"] / st).read_bytes()
    first = next(iter(good))

    def replace(writer: Callable[[Path], None]) -> Callable[[Path], None]:
        def change(folder: Path) -> None:
            (folder / st).unlink()
            writer(folder)

        return change

    def saved(state: dict, name: str = st) -> Callable[[Path], None]:
        if name == st:
            return lambda f: save_file(state, f / st)
        return lambda f: torch.save(state, f / name)

    buffer = io.BytesIO()
    torch.save(good, buffer)
    ints = torch.zeros(good[first].shape, dtype=torch.int32)
    writers = {
        "safetensors truncated": write(st, raw[: len(raw) // 2]),
        "safetensors of zeros": write(st, b"\x00" * 64),
        "safetensors empty": write(st, b""),
        "safetensors header says 1 TB": write(st, (10**12).to_bytes(8, "little") + b"{}"),
        "a weight of the wrong shape": saved({**good, first: torch.zeros(3, 3)}),
        "a weight missing": saved({k: v for k, v in good.items() if k != first}),
        "an extra weight": saved({**good, "extra.weight": torch.zeros(1)}),
        "integer weights": saved({**good, first: ints}),
        "bin garbage": write(bn, b"not a checkpoint" * 20),
        "bin carrying code": saved({first: RunsCode(str(code_marker))}, bn),
        "bin a list": saved([1, 2, 3], bn),  # type: ignore[arg-type]
        "bin of numbers": saved({first: 3}, bn),  # type: ignore[dict-item]
        "bin truncated": write(bn, buffer.getvalue()[:500]),
    }
    made = variants(p["uncond"], root / "bad-weights", {k: replace(w) for k, w in writers.items()})
    cases = [Case("weights", k, f"info --model {q(str(f))}") for k, f in made.items()]
    half = {k: v.half() for k, v in good.items()}
    fp16 = variants(p["uncond"], root / "good-weights", {"fp16": replace(saved(half))})["fp16"]
    command = f"sample --model {q(str(fp16))} --steps 2 --quiet --out fp16.png"
    cases.append(Case("weights", "fp16 safetensors (good)", command, WRITTEN, wants=("fp16.png",)))
    return cases


def encoded(fmt: str, mode: str = "RGB", frames: int = 1) -> bytes:
    """A small image in `fmt`, as bytes."""
    buffer = io.BytesIO()
    if mode == "I;16":
        image = Image.fromarray(np.full((20, 20), 40000, np.uint16))
    else:
        image = Image.new(mode, (20, 20), (200, 30, 30, 128)[: len(mode)])
    others = [Image.new("RGB", (20, 20), (0, 0, 255))] * (frames - 1)
    image.save(buffer, format=fmt, save_all=frames > 1, append_images=others)
    return buffer.getvalue()


def image_cases(p: dict[str, Path], root: Path) -> list[Case]:
    """Files given as the source image (--image) and as the mask (--mask)."""
    folder = root / "bad-images"
    folder.mkdir()
    png = p["image"].read_bytes()
    bomb = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(bomb, format="PNG")
    noise = np.random.default_rng(1).integers(0, 256, 500, np.uint8).tobytes()
    bad = {
        "an EPS named .png": ("picture.png", EPS),
        "an EPS named .jpg": ("photo.jpg", EPS),
        "a PostScript file": ("page.ps", b"%!PS-Adobe-3.0\nshowpage\n"),
        "a PDF named .png": ("doc.png", PDF),
        "an SVG": ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        "an HTML page named .png": ("page.png", b"<html><body>hi</body></html>"),
        "a text file": ("notes.png", b"hello\n"),
        "an empty file": ("empty.png", b""),
        "a truncated PNG": ("cut.png", png[: len(png) // 2]),
        "a PNG header only": ("head.png", png[:33]),
        "a bomb (30000x30000)": ("bomb.png", bomb.getvalue()),
        "a zip named .png": ("zip.png", b"PK\x03\x04" + b"\x00" * 40),
        "random bytes": ("noise.bmp", noise),
        "an ICO named .png": ("icon.png", encoded("ICO")),
        "a TGA named .png": ("pic.png", encoded("TGA")),
    }
    good = {
        "a JPEG named .png": ("jpeg.png", encoded("JPEG")),
        "a 16-bit PNG": ("deep.png", encoded("PNG", mode="I;16")),
        "an animated GIF": ("anim.gif", encoded("GIF", frames=3)),
        "a TIFF": ("pic.tif", encoded("TIFF")),
        "a WebP with alpha": ("pic.webp", encoded("WEBP", mode="RGBA")),
        "a BMP": ("pic.bmp", encoded("BMP")),
    }
    base = f"inpaint --model {q(str(p['model']))} --steps 2 --jump-n-sample 1 --quiet --out o.png"
    image = q(str(p["image"]))
    cases = []
    for name, (file, data) in {**bad, **good}.items():
        (folder / file).write_bytes(data)
        path = q(str(folder / file))
        expected, wants = (WRITTEN, ("o.png",)) if name in good else (REFUSED, ())
        cases += [
            Case(
                "source image",
                name,
                f"{base} --image {path} --mask-preset wide",
                expected,
                wants=wants,
            ),
            Case("mask", name, f"{base} --image {image} --mask {path}", expected, wants=wants),
        ]
    Image.new("L", (7, 5), 255).save(folder / "odd.png")
    cases += [
        Case("source image", "a folder", f"{base} --image {q(str(folder))} --mask-preset thin"),
        Case("source image", "missing", f"{base} --image gone.png --mask-preset thin"),
        Case(
            "mask",
            "of another size",
            f"{base} --image {image} --mask {q(str(folder / 'odd.png'))}",
            message="same size",
        ),
        Case("mask", "an unknown preset", f"{base} --image {image} --mask-preset zig"),
        Case(
            "mask", "a negative seed", f"{base} --image {image} --mask-preset wide --mask-seed -4"
        ),
    ]
    return cases


def flag_cases(p: dict[str, Path], root: Path) -> list[Case]:
    m = q(str(p["model"]))
    sample = f"sample --model {m} --quiet --out s.png"
    inpaint = f"inpaint --model {m} --image {q(str(p['image']))} --mask-preset wide --quiet"
    (root / "thesis.png").write_bytes(p["image"].read_bytes())
    (root / "mine.png").mkdir()
    (root / "mine.png" / "inside.txt").write_text("a folder named like a picture\n")
    nonull = root / "model-nonull"
    shutil.copytree(p["model"], nonull)
    json_edit("diffusion_studio.json", {"class_names": ["a", "b", "c", "d"]})(nonull)
    refused = {
        "guidance nan": f"{sample} --guidance nan",
        "guidance inf": f"{sample} --guidance inf",
        "guidance -inf": f"{sample} --guidance -inf",
        "guidance -1": f"{sample} --guidance -1",
        "guidance 1e308": f"{sample} --guidance 1e308",
        "guidance a word": f"{sample} --guidance strong",
        "eta nan": f"{sample} --eta nan",
        "eta 2": f"{sample} --eta 2",
        "eta -0.5": f"{sample} --eta -0.5",
        "-n 0": f"{sample} -n 0",
        "-n -1": f"{sample} -n -1",
        "-n 100000": f"{sample} -n 100000",
        "-n 10**12": f"{sample} -n {10**12}",
        "--batches 0": f"{sample} --batches 0",
        "--batches 10**9": f"{sample} --batches {10**9}",
        "--batches a word": f"{sample} --batches many",
        "--batches past the last seed": f"{sample} --batches 3 --seed {2**63 - 2}",
        "a trajectory of --batches": f"{sample} --batches 2 --save-trajectory t.gif",
        "a grid of --class all and --batches": f"{sample} --class all --batches 2 --grid g.png",
        "steps 0": f"{sample} --steps 0",
        "steps beyond T": f"{sample} --steps 101",
        "steps 10**9": f"{sample} --steps {10**9}",
        "steps a word": f"{sample} --steps many",
        "seed -1": f"{sample} --seed -1",
        "seed 2**64": f"{sample} --seed {2**64}",
        "class unknown": f"{sample} --class zebra",
        "class index 3 of 3": f"{sample} --class 3",
        "a class for an unconditional model": f"sample --model {q(str(p['uncond']))} --class a",
        "guidance without a null class": f"sample --model {q(str(nonull))} --class a --guidance 3",
        "device tpu:7": f"{sample} --device tpu:7",
        "device cuda:3 on a CPU machine": f"{sample} --device cuda:3",
        "spacing sideways": f"{sample} --spacing sideways",
        "precision float16": f"{sample} --precision float16",
        "precision a number": f"{sample} --precision 16",
        "sampler euler": f"{sample} --sampler euler",
        "variance learned": f"{sample} --variance learned",
        "--out not .png": f"sample --model {m} --quiet --out s.jpg",
        "--grid not .png": f"sample --model {m} --quiet --grid g.gif",
        "--save-trajectory .mp4": f"{sample} --save-trajectory t.mp4",
        "a trajectory of --class all": f"{sample} --class all --save-trajectory t.gif",
        "--out over a person's file": f"sample --model {m} --quiet --out thesis.png",
        "--out a folder": f"sample --model {m} --quiet --out mine.png",
        "--force onto a folder": f"sample --model {m} --quiet --out mine.png --force",
        "jump-n-sample 10**8": f"{inpaint} --jump-n-sample {10**8}",
        "jump-n-sample 0": f"{inpaint} --jump-n-sample 0",
        "jump-length 0": f"{inpaint} --jump-length 0",
        "jump-length -3": f"{inpaint} --jump-length -3",
        "no mask": f"inpaint --model {m} --image {q(str(p['image']))}",
        "an unknown command": "paint",
        "an unknown flag": "sample --colour red",
    }
    cases = [Case("flags", name, command) for name, command in refused.items()]
    good = {
        "a grey model, grid and trajectory": (
            f"sample --model {q(str(p['grey']))} --steps 2 -n 2 --quiet --out g.png "
            "--grid grid.png --save-trajectory t.gif",
            ("g-0.png", "grid.png", "t.gif"),
        ),
        "an RGBA model, inpainting and WebP": (
            f"inpaint --model {q(str(p['rgba']))} --image {q(str(p['image']))} --steps 2 "
            "--mask-preset half --jump-n-sample 2 --quiet --out r.png --save-trajectory r.webp",
            ("r.png", "r.webp"),
        ),
        "guidance 0 (unconditional)": (f"{sample} --steps 2 --guidance 0", ("s.png",)),
        "DDIM with the network's eps": (
            f"{sample} --steps 2 --no-use-clipped-model-output",
            ("s.png",),
        ),
        "trailing spacing, 61 steps": (f"{sample} --spacing trailing --steps 61", ("s.png",)),
    }
    for name, (command, wants) in good.items():
        cases.append(Case("flags", name, command, WRITTEN, wants=wants))
    return cases


def train_cases(p: dict[str, Path], root: Path) -> list[Case]:
    data = root / "bad-data"
    (data / "empty").mkdir(parents=True)
    images = np.zeros((4, 16, 16, 3), np.uint8)
    arrays = {
        "no images": {"labels": np.arange(4)},
        "float images": {"images": images.astype(np.float32)},
        "2-D images": {"images": np.zeros((16, 16), np.uint8)},
        "zero images": {"images": np.zeros((0, 16, 16, 3), np.uint8)},
        "labels beyond 100,000 classes": {"images": images, "labels": np.array([0, 1, 2, 10**7])},
        "labels beyond the categories": {
            "images": images,
            "labels": np.arange(4),
            "categories": np.array(["x"]),
        },
        "negative labels": {"images": images, "labels": np.array([0, -1, 0, 0])},
        "float labels": {"images": images, "labels": np.array([0.5, 1, 2, 0])},
        "labels of another length": {"images": images, "labels": np.arange(3)},
    }
    for name, content in arrays.items():
        np.savez(data / f"{name.replace(' ', '-')}.npz", **content)
    good_npz = (root / "shapes.npz").read_bytes()
    damaged = bytearray(good_npz)
    damaged[300:380] = b"\xff" * 80
    objects = io.BytesIO()
    np.savez(objects, images=np.array([{"a": 1}], dtype=object))
    broken = {
        "truncated": good_npz[:400],
        "damaged": bytes(damaged),
        "objects": objects.getvalue(),
        "text": b"not an archive",
    }
    for name, content in broken.items():
        (data / f"{name}.npz").write_bytes(content)
    cases = [
        Case(
            "train data",
            name,
            f"train {q(str(data))}/{name.replace(' ', '-')}.npz --out m1 {TRAIN}",
        )
        for name in [*arrays, "truncated", "damaged", "objects", "text"]
    ]
    for what, path in (
        ("an empty folder", data / "empty"),
        ("missing", root / "nowhere"),
        ("a folder of non-images", root / "mine"),
    ):
        cases.append(Case("train data", what, f"train {q(str(path))} --out m1 {TRAIN}"))
    d = q(str(p["data"]))
    settings = [
        "--resolution 100000",
        "--resolution 17",
        "--resolution 0",
        "--lr nan",
        "--lr inf",
        "--lr -1",
        "--lr 0",
        "--ema-decay 1.5",
        "--ema-decay nan",
        "--p-uncond 1",
        "--p-uncond nan",
        "--steps 0",
        f"--steps {10**12}",
        "--batch-size 0",
        f"--batch-size {10**9}",
        "--warmup -5",
        "--checkpoint-every 0",
        "--preset huge",
        "--prediction-type sample",
        "--init nowhere",
        f"--init {q(str(p['model']))}",
        "--resume",
    ]
    for extra in settings:
        shown = extra.replace(q(str(p["model"])), "a model of another shape")
        cases.append(Case("train settings", shown, f"train {d} --out m1 {TRAIN} {extra}"))
    places = {
        "--out holding a person's file": "--out mine",
        "--out holding a person's file, --force": "--out mine --force",
        "--out = the data": f"--out {d}",
        "--out = the data, --force": f"--out {d} --force",
        "--out = . (with --checkpoint-dir)": "--out . --checkpoint-dir ck --force",
        "--out = data/..": f"--out {d}/.. --force",
        "--out = ..": "--out .. --force",
        "--out inside the data": f"--out {d}/model",
        "--out = the checkpoint folder": "--out ck --checkpoint-dir ck",
        "--checkpoint-dir = the data": f"--out m1 --checkpoint-dir {d}",
        "--checkpoint-dir = .": "--out m1 --checkpoint-dir .",
        "--out = a person's file, --force": "--out thesis.txt --force",
        "--out = an existing model, no --force": f"--out {q(str(p['uncond']))}",
    }
    cases += [Case("train output", k, f"train {d} {TRAIN} {v}") for k, v in places.items()]
    cases.append(
        Case(
            "train output",
            "a new folder (good)",
            f"train {d} --out fresh {TRAIN}",
            WRITTEN,
            wants=("fresh/config.json",),
        )
    )
    return cases


def checkpoint_cases(p: dict[str, Path], root: Path, code_marker: Path) -> list[Case]:
    """Checkpoints a resumed run reads: a run's last checkpoint, damaged in one way each."""
    from diffusion_studio.core.train.checkpoints import latest_checkpoint

    d = q(str(p["data"]))
    train = "--preset tiny --resolution 16 --batch-size 2 --quiet"
    code, _, err = run_cli(
        [
            "train",
            str(p["data"]),
            "--out",
            "run",
            "--steps",
            "2",
            "--checkpoint-every",
            "1",
            *train.split(),
        ]
    )
    if code != 0:
        raise RuntimeError(f"the run to damage did not train: {err}")
    last = latest_checkpoint(root / "run-checkpoints")
    good = torch.load(last, weights_only=True)
    payloads = {
        "garbage": b"not a checkpoint" * 30,
        "empty": b"",
        "truncated": last.read_bytes()[:1000],
        "not a dict": [1, 2, 3],
        "missing keys": {k: v for k, v in good.items() if k not in ("ema", "optimizer")},
        "carrying code": {**good, "step": RunsCode(str(code_marker))},
        "weights of another network": {**good, "model": {"conv_in.weight": torch.zeros(1)}},
        "version 99": {**good, "version": 99},
        "config a list": {**good, "config": [1]},
        "commands not texts": {**good, "commands": [1, 2]},
    }
    cases = []
    for i, (name, payload) in enumerate(payloads.items()):
        folder = root / f"ck-{i}"
        folder.mkdir()
        target = folder / "checkpoint-0000099.pt"
        if isinstance(payload, bytes):
            target.write_bytes(payload)
        else:
            torch.save(payload, target)
        cases.append(
            Case(
                "checkpoint",
                name,
                f"train {d} --out resumed-{i} --steps 200 --resume "
                f"--checkpoint-dir {q(str(folder))} {train}",
            )
        )
    cases += [
        Case(
            "checkpoint",
            "another run's settings",
            f"train {d} --out run --steps 5 --resume --lr 0.1 {train}",
            message="other learning_rate",
        ),
        Case(
            "checkpoint",
            "resume into the run's own folder (good)",
            f"train {d} --out run --steps 3 --resume --checkpoint-every 1 {train}",
            WRITTEN,
            wants=("run/config.json",),
            replaces=("run/", "run-checkpoints/"),
        ),
    ]
    return cases


def eval_cases(p: dict[str, Path]) -> list[Case]:
    bad = [
        "-n 0",
        "-n -5",
        f"-n {10**9}",
        "--steps 0",
        "--steps 10,x",
        "--steps ,",
        "--eta nan",
        "--eta 0,2",
        "--guidance nan",
        "--guidance inf",
        "--batch 0",
    ]
    cases = [Case("eval", flags, f"eval {flags} --quiet") for flags in bad]
    cases.append(Case("eval", "an unconditional model", f"eval --model {q(str(p['uncond']))}"))
    cases.append(Case("eval", "a model of other classes", f"eval --model {q(str(p['model']))}"))
    return cases


def convert_cases(p: dict[str, Path], root: Path, code_marker: Path) -> list[Case]:
    """Checkpoints given to `convert` that are not OpenAI UNetModel state dicts."""
    folder = root / "bad-checkpoints"
    folder.mkdir()
    from safetensors.torch import load_file

    diffusers_state = load_file(p["uncond"] / "diffusion_pytorch_model.safetensors")
    payloads = {
        "a diffusers state dict": diffusers_state,
        "a dict of other tensors": {"a.weight": torch.zeros(3)},
        "a dict of numbers": {"a": 1},
        "a list": [1, 2],
        "carrying code": {"time_embed.0.weight": RunsCode(str(code_marker))},
        "a text file": b"hello",
        "empty": b"",
        "a training checkpoint of the studio": None,
    }
    cases = []
    for i, (name, payload) in enumerate(payloads.items()):
        path = folder / f"ckpt-{i}.pt"
        if payload is None:
            path.write_bytes(next((root / "run-checkpoints").glob("*.pt")).read_bytes())
        elif isinstance(payload, bytes):
            path.write_bytes(payload)
        else:
            torch.save(payload, path)
        command = f"convert {q(str(path))} --out conv --preset iddpm-cifar10"
        cases.append(Case("convert", name, command))
    cases.append(Case("convert", "missing", "convert nowhere.pt --out conv"))
    cases.append(
        Case("convert", "an unknown preset", f"convert {q(str(path))} --out conv --preset x")
    )
    cases.append(Case("convert", "--out a person's folder", f"convert {q(str(path))} --out mine"))
    return cases


def classifier_cases(p: dict[str, Path], root: Path, code_marker: Path) -> list[Case]:
    """Classifier folders given to --classifier, and what train-classifier cannot learn from."""
    config = {
        "num_classes text": {"num_classes": "three"},
        "num_classes 1": {"num_classes": 1},
        "num_classes 10**9": {"num_classes": 10**9},
        "pool_head_dim 5": {"pool_head_dim": 5},
        "a key of a UNet": {"up_block_types": ["UpBlock2D"]},
        "sample_size a list": {"sample_size": [16, 16]},
        "channels huge": {"block_out_channels": [100000, 100000]},
        "norm_num_groups 0": {"norm_num_groups": 0},
        "a UNet's class name": {"_class_name": "UNet2DModel"},
    }
    folder = {
        "no weights": lambda f: (f / "diffusion_pytorch_model.safetensors").unlink(),
        "weights a text": write("diffusion_pytorch_model.safetensors", "hello"),
        "weights a pickle with code": _pickled_code(code_marker),
        "class names 2 for 3": json_edit("diffusion_studio.json", {"class_names": ["a", "b"]}),
        "scheduler T text": json_edit("scheduler_config.json", {"num_train_timesteps": "x"}),
    }
    changes = {**{k: json_edit("config.json", v) for k, v in config.items()}, **folder}
    made = variants(p["classifier"], root / "bad-classifiers", changes)
    model = f"--model {q(str(p['model']))}"
    run = f"sample {model} --steps 2 --class 1 --classifier-scale 2 --out cg.png"
    cases = [Case("classifier", k, f"{run} --classifier {q(str(f))}") for k, f in made.items()]
    cases += [
        Case("classifier", "a model folder", f"{run} --classifier {q(str(p['model']))}"),
        Case("classifier", "missing", f"{run} --classifier nowhere"),
        Case("classifier", "no classifier given", run),
        Case("classifier", "scale NaN", f"{run} --classifier-scale nan"),
        Case(
            "classifier",
            "scale 1000",
            f"{run} --classifier {q(str(p['classifier']))} --classifier-scale 1000",
        ),
        Case(
            "classifier",
            "good",
            f"{run} --classifier {q(str(p['classifier']))}",
            WRITTEN,
            wants=("cg.png",),
        ),
    ]
    unlabelled = root / "unlabelled.npz"
    np.savez(unlabelled, images=np.zeros((6, 16, 16, 3), np.uint8))
    train = f"--noise-of {q(str(p['model']))} --resolution 16 --steps 2 --preset tiny --quiet"
    for what, flags in {
        "data without labels": f"{q(str(unlabelled))} --out c1",
        "held-out share 0.9": "shapes.npz --out c2 --holdout 0.9",
        "held-out share NaN": "shapes.npz --out c3 --holdout nan",
        "noise of a missing model": "shapes.npz --out c4 --noise-of nowhere",
        "noise of a 16x16 model, at 32x32": "shapes.npz --out c5 --resolution 32",
        "--out a person's folder": "shapes.npz --out mine",
    }.items():
        # the row's own flags come last, so that they win over the common ones
        cases.append(Case("train-classifier", what, f"train-classifier {train} {flags}"))
    return cases


def _pickled_code(marker: Path) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / "diffusion_pytorch_model.safetensors").unlink()
        torch.save({"x": RunsCode(str(marker))}, folder / "diffusion_pytorch_model.bin")

    return change
