"""Hostile input of the classes that escaped the earlier sweeps: config values of the wrong
kind, output paths with no name or that cannot be written, convert flags that cannot fit, NaN
weights, records with bombs or huge numbers, files that are not regular files, digits of other
scripts, and flags that would do nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from cases_cli import TRAIN, json_edit, variants
from harness import REFUSED, WINDOW_REFUSED, WRITTEN, Case, Check, q
from PIL import Image
from PIL.PngImagePlugin import PngInfo

LONG = "n" * 300  # a name longer than any file system's 255 bytes
SCHED = "scheduler_config.json"


def escape_cases(p: dict[str, Path], root: Path) -> list[Case]:
    base = root / "escapes"
    base.mkdir()
    (base / "loop").symlink_to("loop")  # a link to itself
    (base / "away").symlink_to(base / "nowhere")  # a link to nothing
    return [
        *_config_cases(p, base),
        *_output_cases(p, base),
        *_convert_cases(base),
        *_weights_cases(p, base),
        *_flag_cases(p),
        *_workflow_cases(p, base),
        *_restore_cases(p, base),
        *_outpaint_cases(p, base),
    ]


def _restore_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """upscale's and colorize's pictures and flags, inpaint's consistency, and records of a
    restoration that are hostile."""
    from diffusion_studio.core.export import save_png
    from diffusion_studio.core.request import SampleRequest

    m, grey_model = q(str(p["model"])), q(str(p["grey"]))
    image = q(str(p["image"]))
    bomb = base / "bomb.png"
    Image.new("1", (30_000, 30_000)).save(bomb)
    eps = q(str(base.parent / "bad-images" / "picture.png"))
    up = f"upscale --model {m} --steps 2 --quiet --out u.png"
    refused = {
        "upscale --factor 3": f"{up} --image {image} --factor 3",
        "upscale --method bicubic": f"{up} --image {image} --method bicubic",
        "upscale a bomb": f"{up} --image {q(str(bomb))}",
        "upscale an EPS named .png": f"{up} --image {eps}",
        "upscale a missing picture": f"{up} --image nowhere.png",
        "upscale --class auto of an unknown model": f"{up} --image {image} --class auto",
        "colorize with a grey model": f"colorize --model {grey_model} --image {image} --steps 2 "
        "--quiet --out c.png",
        "inpaint --consistency x": f"inpaint --model {m} --image {image} --mask-preset half "
        "--consistency x --out i.png",
    }
    cases = [Case("restore", k, v) for k, v in refused.items()]
    good = SampleRequest(num_inference_steps=3, class_label=0).to_dict()
    image_array = np.zeros((16, 16, 3), np.uint8)
    small = io.BytesIO()
    Image.new("RGB", (8, 8)).save(small, format="PNG")
    huge = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(huge, format="PNG")
    records = {
        "an operator of its own": ({"operator": "blur"}, {}),
        "a factor of 3": ({"operator": "average", "factor": 3}, {"observation": small.getvalue()}),
        "an average without its picture": ({"operator": "average", "factor": 2}, {}),
        "an observation of another size": (
            {"operator": "average", "factor": 4},
            {"observation": small.getvalue()},
        ),
        "an observation of 3000x3000": (
            {"operator": "average", "factor": 2},
            {"observation": huge.getvalue()},
        ),
        "a DDNM inpainting without its image": ({"operator": "mask"}, {}),
    }
    for i, (name, (restore, files)) in enumerate(records.items()):
        path = base / f"restore-{i}.png"
        metadata = {"request": good, "model": "tiny", "version": "0.1.0", "restore": restore}
        save_png(path, image_array, metadata=metadata, attachments=files)
        command = f"fork --model {m} {q(str(path))} --at-step 1 --out {q(str(base / 'rf.png'))}"
        cases.append(Case("restore", f"a record: {name}", command))
    cases += [
        Case("restore", "upscale 2x by DDNM (good)", f"{up} --image {image}", WRITTEN,
             wants=("u.png",)),
        Case("restore", "upscale 2x on the grid (good)", f"{up} --image {image} --method grid",
             WRITTEN, wants=("u.png",)),
        Case("restore", "colorize (good)", f"colorize --model {m} --image {image} --steps 2 "
             "--quiet --out c.png", WRITTEN, wants=("c.png",)),
    ]  # fmt: skip
    return cases


def _outpaint_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """outpaint's flags and pictures, records of an outpainting (outpaint --again) and of an
    enlargement's windows (fork) that are hostile."""
    from diffusion_studio.core.export import save_png
    from diffusion_studio.core.request import SampleRequest

    m, image = q(str(p["model"])), q(str(p["image"]))
    op = f"outpaint --model {m} --steps 2 --jump-n-sample 1 --quiet --out o.png"
    bomb = q(str(base / "bomb.png"))
    refused = {
        "outpaint with no growth": f"{op} --image {image}",
        "outpaint --extend right": f"{op} --image {image} --extend right",
        "outpaint --extend up:0.5": f"{op} --image {image} --extend up:0.5",
        "outpaint --extend right:nan": f"{op} --image {image} --extend right:nan",
        "outpaint --extend right:1e308": f"{op} --image {image} --extend right:1e308",
        "outpaint --extend right:-0.5": f"{op} --image {image} --extend right:-0.5",
        "outpaint --extend full-width digits": f"{op} --image {image} --extend right:０.５",
        "outpaint --zoom-out 1": f"{op} --image {image} --zoom-out 1",
        "outpaint --zoom-out inf": f"{op} --image {image} --zoom-out inf",
        "outpaint --passes 0": f"{op} --image {image} --extend right:0.5 --passes 0",
        "outpaint --passes 2**40": f"{op} --image {image} --extend right:0.5 --passes {2**40}",
        "outpaint past 2048 pixels": f"{op} --image {image} --extend right:4 --passes 40",
        "outpaint -n 2": f"{op} --image {image} --extend right:0.5 -n 2",
        "outpaint --method x": f"{op} --image {image} --extend right:0.5 --method x",
        "outpaint a bomb": f"{op} --image {bomb} --extend right:0.5",
        "outpaint a missing picture": f"{op} --image nowhere.png --extend right:0.5",
        "outpaint --again a plain picture": f"outpaint --model {m} --out o.png --again {image}",
        "outpaint --again with --steps": f"{op} --again {image} --seed 3",
        "upscale --tiled --method grid": f"upscale --model {m} --steps 2 --quiet --out u.png "
        f"--image {image} --tiled --method grid",
    }
    cases = [Case("outpaint", k, v) for k, v in refused.items()]
    good = SampleRequest(num_inference_steps=2, class_label=0, jump_n_sample=1).to_dict()
    right = {"kind": "extend", "amount": 0.5, "side": "right"}
    picture = io.BytesIO()
    Image.new("RGB", (16, 16)).save(picture, format="PNG")
    huge = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(huge, format="PNG")
    grey = io.BytesIO()
    Image.new("L", (16, 16)).save(grey, format="PNG")
    pictures = {"picture": picture.getvalue()}
    records = {
        "growths that are not a list": ({"growths": "right"}, pictures),
        "no growth": ({"growths": []}, pictures),
        "100,000 growths": ({"growths": [right] * 100_000}, pictures),
        "a growth of NaN": ({"growths": [{**right, "amount": float("nan")}]}, pictures),
        "a growth of a text": ({"growths": [{**right, "amount": "0.5"}]}, pictures),
        "a growth of a kind of its own": ({"growths": [{**right, "kind": "blur"}]}, pictures),
        "a side of its own": ({"growths": [{**right, "side": "up"}]}, pictures),
        "joined that is a text": ({"growths": [{**right, "joined": "yes"}]}, pictures),
        "a method of its own": ({"growths": [right], "method": "x"}, pictures),
        "no settings": ({"growths": [right], "request": None}, pictures),
        "no picture": ({"growths": [right]}, {}),
        "a picture of 3000x3000": ({"growths": [right]}, {"picture": huge.getvalue()}),
        "a grey picture for an RGB model": ({"growths": [right]}, {"picture": grey.getvalue()}),
        "another model's hash": ({"growths": [right], "model_hash": "0123456789"}, pictures),
    }
    for i, (name, (fields, files)) in enumerate(records.items()):
        path = base / f"grown-{i}.png"
        record = {"request": good, "method": "passes", **fields}
        attachments = {"outpaint": json.dumps(record).encode(), **files}
        save_png(path, np.zeros((16, 24, 3), np.uint8), attachments=attachments)
        again = f"outpaint --model {m} --quiet --out o.png --again {q(str(path))}"
        cases.append(Case("outpaint", f"a record: {name}", again))
    observation = io.BytesIO()
    Image.new("RGB", (16, 16)).save(observation, format="PNG")
    windows = {
        "windows off the canvas": [[0, 0], [0, 40]],
        "windows that leave pixels out": [[0, 0]],
        "a window of three numbers": [[0, 0, 0]],
        "windows of texts": [["0", "0"]],
        "100,000 windows": [[0, 0]] * 100_000,
    }
    restore = {"operator": "average", "factor": 2}
    for i, (name, listed) in enumerate(windows.items()):
        path = base / f"tiled-{i}.png"
        metadata = {"request": good, "model": "tiny", "version": "0.1.0", "restore": restore,
                    "windows": listed}  # fmt: skip
        save_png(path, np.zeros((32, 32, 3), np.uint8), metadata=metadata,
                 attachments={"observation": observation.getvalue()})  # fmt: skip
        command = f"fork --model {m} {q(str(path))} --at-step 1 --out {q(str(base / 'tf.png'))}"
        cases.append(Case("outpaint", f"a record: {name}", command))
    path = base / "windows-alone.png"
    metadata = {"request": good, "model": "tiny", "version": "0.1.0", "windows": [[0, 0]]}
    save_png(path, np.zeros((16, 16, 3), np.uint8), metadata=metadata)
    cases.append(Case("outpaint", "a record: windows without a restoration",
                      f"fork --model {m} {q(str(path))} --at-step 1 --out tf.png"))  # fmt: skip
    cases += [
        Case("outpaint", "outpaint right, twice (good)",
             f"{op} --image {image} --extend right:0.5 --passes 2", WRITTEN, wants=("o.png",)),
        Case("outpaint", "outpaint zoom out by passes (good)",
             f"{op} --image {image} --zoom-out 2 --method passes", WRITTEN, wants=("o.png",)),
        Case("outpaint", "upscale --tiled (good)", f"upscale --model {m} --steps 2 --quiet "
             f"--out u.png --image {image} --tiled", WRITTEN, wants=("u.png",)),
    ]  # fmt: skip
    return cases


def _workflow_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """compare's axes and reference, fork's parent and step, and records whose lineage (a
    fork's parent, a cell) is hostile."""
    from diffusion_studio.core.export import save_png
    from diffusion_studio.core.request import SampleRequest

    m = q(str(p["model"]))
    compare = f"compare --model {m} --quiet --out {q(str(base / 'cmp'))}"
    many = ",".join(str(k) for k in range(1, 101))
    etas = ",".join(f"0.{k:02d}" for k in range(100))
    refused = {
        "--steps x": "--steps 5,x",
        "--steps 0": "--steps 0,5",
        "--steps 10,10": "--steps 10,10",
        "--steps beyond T": "--steps 5,101",
        "--eta 2": "--eta 0,2",
        "--eta NaN": "--eta 0,nan",
        "--sampler euler": "--sampler ddim,euler",
        "--eta with DDPM alone": "--sampler ddpm --eta 0,1",
        "--reference 9,9": "--steps 2,3 --reference 9,9",
        "--reference a,b": "--steps 2,3 --reference a,b",
        "--columns not swept": "--steps 2,3 --columns eta",
        "20,000 cells": f"--sampler ddpm,ddim --steps {many} --eta {etas}",
        "--grid .jpg": "--steps 2,3 --grid t.jpg",
        "--out a person's file": "--steps 2,3 --out thesis.txt",
        "--steps in full-width digits": "--steps ２,３",
    }
    cases = [Case("compare", k, f"{compare} {v}") for k, v in refused.items()]
    good_compare = f"{compare} --steps 2,3 --eta 0,1 --grid g.png"
    cases.append(Case("compare", "two by two (good)", good_compare, WRITTEN, wants=("g.png",)))
    good = SampleRequest(
        sampler="ddpm", num_inference_steps=6, seed=2, class_label=1, guidance_scale=2.0
    ).to_dict()
    image = np.zeros((16, 16, 3), np.uint8)

    def record(name: str, **metadata: object) -> str:
        path = base / f"{name}.png"
        metadata = {"model": "tiny", "version": "0.1.0", "request": good, **metadata}
        save_png(path, image, metadata=metadata)
        return q(str(path))

    parent = record("parent")
    deep: dict = {"request": good}
    for _ in range(70):
        deep = {"request": good, "fork": {"parent": deep, "at_step": 1}}
    Image.new("RGB", (4, 4)).save(base / "norecord.png")
    fork = f"fork --model {m} --out {q(str(base / 'child.png'))}"
    lineage = {
        "a fork of 70 forks": record("deep", fork=deep["fork"]),
        "a fork's parent a list": record("f1", fork={"parent": [1]}),
        "a fork's step -3": record("f2", fork={"parent": {"request": good}, "at_step": -3}),
        "a fork whose parent is an inpainting and it not": record(
            "f3", fork={"parent": {"request": good, "inpaint": True}, "at_step": 1}
        ),
        "a cell of row -1": record("c1", cell={"row": -1, "column": 0}),
        "a cell label of 10,000 characters": record(
            "c2", cell={"row": 0, "column": 0, "row_label": "x" * 10_000}
        ),
        "a PNG without a record": q(str(base / "norecord.png")),
        "not a PNG": q(str(base / "a-file.txt")),
    }
    refused = {k: f"{fork} {v} --at-step 1" for k, v in lineage.items()}
    refused |= {
        "--at-step -1": f"{fork} {parent} --at-step -1",
        "--at-step the last": f"{fork} {parent} --at-step 6",
        "--at-step 2**40": f"{fork} {parent} --at-step {2**40}",
        "--steps beyond the step's timestep": f"{fork} {parent} --at-step 5 --steps 90",
        "--eta with DDPM": f"{fork} {parent} --at-step 2 --eta 0.5",
        "another model's PNG": f"fork --model {q(str(p['uncond']))} {parent} --at-step 2 "
        f"--out {q(str(base / 'c.png'))}",
    }
    cases += [Case("fork", k, v) for k, v in refused.items()]
    good_fork = f"{fork} {parent} --at-step 3"
    cases.append(
        Case(
            "fork",
            "unchanged, from step 3 (good)",
            good_fork,
            WRITTEN,
            wants=("escapes/child.png",),
        )
    )
    return cases


def _config_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """A value of the wrong kind where diffusers has a number, a flag or a name."""
    config = {
        "sample_size [16]": {"sample_size": [16]},
        "in_channels null": {"in_channels": None},
        "layers_per_block null": {"layers_per_block": None},
        "norm_eps null": {"norm_eps": None},
        "freq_shift [0]": {"freq_shift": [0]},
        "downsample_padding null": {"downsample_padding": None},
        "mid_block_scale_factor a text": {"mid_block_scale_factor": "1"},
        "flip_sin_to_cos 1": {"flip_sin_to_cos": 1},
        "act_fn 3": {"act_fn": 3},
        "timestep_scale 0": {"timestep_scale": 0},
        "timestep_scale a list": {"timestep_scale": [0.25]},
    }
    scheduler = {
        "num_train_timesteps null": {"num_train_timesteps": None},
        "beta_start null": {"beta_start": None},
        "beta_end [0.02]": {"beta_end": [0.02]},
        "clip_sample_range null": {"clip_sample_range": None},
        "steps_offset null": {"steps_offset": None},
    }
    changes = {
        **{f"config {k}": json_edit("config.json", v) for k, v in config.items()},
        **{f"scheduler {k}": json_edit(SCHED, v) for k, v in scheduler.items()},
        "config.json a FIFO": _fifo("config.json"),
        "scheduler_config.json a FIFO": _fifo(SCHED),
        "diffusion_studio.json a FIFO": _fifo("diffusion_studio.json"),
    }
    made = variants(p["uncond"], base / "models", changes)
    cases = [Case("config kinds", k, f"info --model {q(str(f))}") for k, f in made.items()]
    good = variants(p["uncond"], base / "models", {"sample_size [16, 16]": _size_pair})
    command = f"sample --model {q(str(good['sample_size [16, 16]']))} --steps 2 --quiet --out g.png"
    cases.append(
        Case("config kinds", "sample_size [16, 16] (good)", command, WRITTEN, wants=("g.png",))
    )
    return cases


def _size_pair(folder: Path) -> None:
    json_edit("config.json", {"sample_size": [16, 16]})(folder)


def _fifo(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)

    return change


def _output_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """Output paths with no name of their own, or that cannot be written: refused before the
    run, naming the destination."""
    d, m = q(str(p["data"])), q(str(p["model"]))
    loop, away = base / "loop", base / "away"
    (base / "a-file.txt").write_text("a person's file\n")
    sample = f"sample --model {m} --steps 2 --quiet"
    refused = {
        "train --out .": f"train {d} --out . {TRAIN}",
        "train --out /": f"train {d} --out / {TRAIN}",
        "train --out ./": f"train {d} --out ./ {TRAIN}",
        "train --out ''": f"train {d} --out '' {TRAIN}",
        "train --checkpoint-dir /": f"train {d} --out m9 --checkpoint-dir / {TRAIN}",
        "train --out a link loop": f"train {d} --out {q(str(loop / 'm'))} {TRAIN}",
        "train --out a name too long": f"train {d} --out {LONG} {TRAIN}",
        "convert --out .": "convert x.pt --out .",
        "--outdir a link loop": f"{sample} --outdir {q(str(loop))}",
        "--outdir inside a link loop": f"{sample} --outdir {q(str(loop / 'sub'))}",
        "--outdir a link to nothing": f"{sample} --outdir {q(str(away / 'sub'))}",
        "--outdir a name too long": f"{sample} --outdir {LONG}",
        "--outdir /dev/null": f"{sample} --outdir /dev/null",
        "--outdir a person's file": f"{sample} --outdir {q(str(base / 'a-file.txt'))}",
        "--out in a link loop": f"{sample} --out {q(str(loop / 'x.png'))}",
        "--out under /dev/null": f"{sample} --out /dev/null/x.png",
        "--out a name too long": f"{sample} --out {'n' * 250}.png",
        "--grid in a link loop": f"{sample} --out s.png --grid {q(str(loop / 'g.png'))}",
        "--save-trajectory in a link loop": (
            f"{sample} --out s.png --save-trajectory {q(str(loop / 't.gif'))}"
        ),
    }
    cases = [Case("output paths", k, v) for k, v in refused.items()]
    cases.append(
        Case(
            "output paths",
            "--outdir two new folders deep (good)",
            f"{sample} --outdir new/deeper",
            WRITTEN,
            wants=("new/deeper/00001-0.png",),
        )
    )
    return cases


def _convert_cases(base: Path) -> list[Case]:
    """Flags that cannot fit the weights, named by their flag; guided-diffusion's README
    flags (good)."""
    from tests.core.test_convert import reference_unet

    checkpoint = base / "cifar10.pt"
    state = reference_unet("iddpm-cifar10").state_dict()
    torch.save(state, checkpoint)
    nan = base / "nan.pt"
    torch.save({k: torch.full_like(v, float("nan")) for k, v in state.items()}, nan)
    c, out = q(str(checkpoint)), f"--out {q(str(base / 'conv'))}"
    refused = {
        "--num-heads 7": "--num-heads 7",
        "--num-head-channels 7": "--num-head-channels 7",
        "--num-heads-upsample 3": "--num-heads-upsample 3",
        "--image-size 17": "--image-size 17",
        "--image-size 4096": "--image-size 4096",
        "--diffusion-steps 1": "--diffusion-steps 1",
        "--diffusion-steps 10, linear": "--diffusion-steps 10 --noise-schedule linear",
        "--num_channels 64 (the weights: 32)": "--num_channels 64",
        "--class_cond True (the weights: none)": "--class_cond True",
        "--learn_sigma False (the weights: True)": "--learn_sigma False",
        "--attention_resolutions 32 (the weights: 16,8)": "--attention_resolutions 32",
        "--channel_mult 1,2 (the weights: 4 levels)": "--channel_mult 1,2",
        "--class_cond maybe": "--class_cond maybe",
        "--attention_resolutions x": "--attention_resolutions x",
        "--classifier_pool spatial": "--classifier_pool spatial",
        "--image_size in full-width digits": "--image_size ３２",
        "--noise_schedule sigmoid": "--noise_schedule sigmoid",
    }
    cases = [
        Case("convert flags", k, f"convert {c} {out} --preset iddpm-cifar10 {v}")
        for k, v in refused.items()
    ]
    cases.append(
        Case(
            "convert flags",
            "all weights NaN",
            f"convert {q(str(nan))} {out} --preset iddpm-cifar10",
        )
    )
    pasted = (
        "--image_size 32 --num_channels 32 --num_res_blocks 2 --learn_sigma True --class_cond "
        "False --attention_resolutions 16,8 --diffusion_steps 4000 --noise_schedule cosine "
        "--rescale_timesteps True --use_fp16 True --dropout 0.3 --timestep_respacing 250"
    )
    cases.append(
        Case(
            "convert flags",
            "guided-diffusion's README flags, pasted (good)",
            f"convert {c} {out} {pasted}",
            WRITTEN,
            wants=("escapes/conv/config.json",),
        )
    )
    return cases


def _weights_cases(p: dict[str, Path], base: Path) -> list[Case]:
    """Weights of NaN or infinite values, in a model and in a classifier: refused where read."""
    from safetensors.torch import load_file, save_file

    st = "diffusion_pytorch_model.safetensors"

    def poisoned(value: float, every: bool) -> Callable[[Path], None]:
        def change(folder: Path) -> None:
            state = load_file(folder / st)
            first = next(iter(state))
            if every:
                state = {k: torch.full_like(v, value) for k, v in state.items()}
            else:
                state[first] = state[first].clone()
                state[first].view(-1)[0] = value
            save_file(state, folder / st)

        return change

    kinds = {"all NaN": (float("nan"), True), "one inf": (float("inf"), False),
             "one NaN": (float("nan"), False)}  # fmt: skip
    models = variants(p["uncond"], base / "nan-models", {k: poisoned(*v) for k, v in kinds.items()})
    cases = [
        Case("NaN weights", f"model, {k}", f"info --model {q(str(f))}") for k, f in models.items()
    ]
    guides = variants(
        p["classifier"], base / "nan-guides", {k: poisoned(*v) for k, v in kinds.items()}
    )
    model = q(str(p["model"]))
    run = f"sample --model {model} --steps 2 --class 1 --classifier-scale 2 --quiet --out cg.png"
    cases += [
        Case("NaN weights", f"classifier, {k}", f"{run} --classifier {q(str(f))}")
        for k, f in guides.items()
    ]
    return cases


def _flag_cases(p: dict[str, Path]) -> list[Case]:
    """Digits of other scripts, and flags the chosen sampler or mask would ignore."""
    m, image, data = q(str(p["model"])), q(str(p["image"])), q(str(p["data"]))
    sample = f"sample --model {m} --steps 2 --quiet --out f.png"
    inpaint = f"inpaint --model {m} --image {image} --steps 2 --quiet --out f.png"
    refused = {
        "--classifier-scale ２ (full-width)": f"{sample} --classifier-scale ２",
        "--steps ５ (full-width)": f"{sample.replace('--steps 2', '')} --steps ５",
        "--seed ٣ (Arabic-Indic)": f"{sample} --seed ٣",
        "--guidance ３ (full-width)": f"{sample} --guidance ３",
        "-n ２ (full-width)": f"{sample} -n ２",
        "--class ２ (full-width)": f"{sample} --class ２",
        "eval --steps １０ (full-width)": "eval --steps １０ --quiet",
        "train --steps ２ (full-width)": f"train {data} --out m8 --preset tiny --steps ２",
        "--sampler ddpm --eta 0.5": f"{sample} --sampler ddpm --eta 0.5",
        "--sampler ddpm --no-use-clipped-model-output": (
            f"{sample} --sampler ddpm --no-use-clipped-model-output"
        ),
        "--sampler ddim --variance fixed_large": f"{sample} --sampler ddim --variance fixed_large",
        "--classifier without a scale": f"{sample} --classifier {q(str(p['classifier']))}",
        "--mask-seed with a preset that is not random": (
            f"{inpaint} --mask-preset half --mask-seed 3"
        ),
        "--invert-mask with a preset": f"{inpaint} --mask-preset thin --invert-mask",
        "eval --sampler ddpm --eta 0": "eval --sampler ddpm --eta 0 --quiet",
        "--sampler dpmpp_2m --eta 0.5": f"{sample} --sampler dpmpp_2m --eta 0.5",
        "--sampler dpmpp_2m --variance fixed_large": (
            f"{sample} --sampler dpmpp_2m --variance fixed_large"
        ),
        "eval --sampler dpmpp_2m --eta 0": "eval --sampler dpmpp_2m --eta 0 --quiet",
    }
    return [Case("flags that do nothing", k, v) for k, v in refused.items()]


# --- the window: records and crash-restore files --------------------------------------------


def record_cases(p: dict[str, Path], root: Path, window_of: Callable) -> list[Case]:
    """PNG records with bombs as attachments or numbers beyond any field, opened in the window;
    a bomb among the outputs; an output folder whose name is too long."""
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.core.export import METADATA_KEY, save_png
    from diffusion_studio.core.request import SampleRequest

    folder = root / "escape-records"
    folder.mkdir()
    window = window_of(root, p["model"])
    window.show()
    good = SampleRequest(sampler="ddpm", num_inference_steps=7, seed=99).to_dict()

    def text_record(name: str, metadata: dict) -> Path:
        path = folder / f"{name}.png"
        info = PngInfo()
        info.add_text(METADATA_KEY, json.dumps(metadata))
        Image.new("RGB", (16, 16), "white").save(path, pnginfo=info)
        return path

    def bomb_record(name: str, which: str) -> Path:
        bomb = io.BytesIO()
        Image.new("1", (30_000, 30_000)).save(bomb, format="PNG")
        small = io.BytesIO()
        Image.new("RGB" if which == "mask" else "L", (16, 16)).save(small, format="PNG")
        attachments = {
            which: bomb.getvalue(),
            ("source" if which == "mask" else "mask"): small.getvalue(),
        }
        metadata = {"request": good, "model": "tiny", "inpaint": True, "version": "0.1.0"}
        return save_png(folder / f"{name}.png", np.zeros((16, 16, 3), np.uint8), metadata=metadata,
                        attachments=attachments)  # fmt: skip

    def refused(path: Path) -> Check:
        def check() -> tuple[bool, str]:
            window.clear_error()
            model, request = window.model, window.panel.request()
            answer = window.open_file(path)
            QApplication.processEvents()
            kept = window.model is model and window.panel.request() == request
            said = window.error.text()[:150]
            ok = not answer and kept and window.error.isVisible() and bool(said)
            return ok, f"{'kept' if kept else 'CHANGED'}: {said}"

        return check

    records = {
        "the source attached a bomb": bomb_record("bomb-source", "source"),
        "the mask attached a bomb": bomb_record("bomb-mask", "mask"),
        "steps 2**40": text_record("steps", {"request": {**good, "num_inference_steps": 2**40}}),
        "resamples 2**40": text_record("jumps", {"request": {**good, "jump_n_sample": 2**40}}),
        "jump length 2**31": text_record("length", {"request": {**good, "jump_length": 2**31}}),
        "a grid row of steps -1": text_record(
            "grid", {"request": good, "requests": [{**good, "num_inference_steps": -1}]}
        ),
        "a model hash that is no hash": text_record("hash", {"request": good, "model_hash": "zz"}),
    }
    cases = [
        Case("escaping records", k, None, WINDOW_REFUSED, refused(v)) for k, v in records.items()
    ]

    learned = text_record("learned", {"request": {**good, "variance_type": "learned_range"}})

    def variance_not_offered() -> tuple[bool, str]:
        window.clear_error()
        window.open_file(learned)
        QApplication.processEvents()
        box = window.panel.variance.currentText()
        said = window.error.text()
        ok = bool(box) and "variance type learned_range" in said
        return ok, f"the box shows {box!r}; {said[:100]}"

    cases.append(
        Case(
            "escaping records",
            "a variance this model does not offer",
            None,
            "the box keeps a variance; said",
            variance_not_offered,
        )
    )

    def bomb_among_outputs() -> tuple[bool, str]:
        from diffusion_studio.core.record import read_written

        day = root / "outputs-with-a-bomb"
        day.mkdir()
        shutil.copy(bomb_record("00002-99", "source"), day / "00002-99.png")
        save_png(day / "00001-5.png", np.zeros((16, 16, 3), np.uint8),
                 metadata={"request": good, "model": "tiny", "version": "0.1.0"})  # fmt: skip
        found = [path.name for path, _ in read_written(day)]
        shutil.rmtree(day)
        return found == ["00001-5.png"], f"the gallery reads {found}"

    cases.append(
        Case(
            "escaping records",
            "a bomb among the outputs",
            None,
            "the rest still read",
            bomb_among_outputs,
        )
    )
    return [*cases, _outputs_too_long(p, root)]


def _outputs_too_long(p: dict[str, Path], root: Path) -> Case:
    def check() -> tuple[bool, str]:
        from PySide6.QtCore import QSettings

        from diffusion_studio.core.model_files import load_model
        from diffusion_studio.ui.main_window import MainWindow

        settings = QSettings(str(root.parent / "long.ini"), QSettings.Format.IniFormat)
        settings.setValue("outputs/folder", str(root / LONG))
        window = MainWindow(load_model(p["model"]), settings=settings, load_default=False,
                            outputs=root / "default-outputs")  # fmt: skip
        window.show()
        gallery = window.outputs.recent()
        window.run()
        said = window.error.text()
        running = window.sampler.running
        window.close()
        ok = gallery == [] and not running and "could not be saved" in said
        return ok, f"started; Run refused: {said[:110]}"

    return Case("escaping records", "an output folder of a name too long", None,
                "the window starts; Run says why", check)  # fmt: skip


__all__ = ["REFUSED", "escape_cases", "record_cases"]
