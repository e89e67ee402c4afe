"""`convert`: an OpenAI guided- or improved-diffusion checkpoint (a model or an ADM classifier)
into a diffusers folder."""

from __future__ import annotations

import argparse
import sys

from diffusion_studio.cli.common import PROG
from diffusion_studio.core.errors import InputError

# core.convert.PRESETS, named here so that --help needs no torch (a test keeps them the same)
PRESET_NAMES = (
    "repaint-celeba256",
    "repaint-places256",
    "adm-imagenet64",
    "adm-imagenet128",
    "adm-imagenet256",
    "adm-imagenet256-uncond",
    "adm-imagenet512",
    "adm-lsun",
    "adm-classifier64",
    "adm-classifier128",
    "adm-classifier256",
    "adm-classifier512",
    "iddpm-cifar10",
    "iddpm-imagenet64",
)  # fmt: skip


def add_parser(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser(
        "convert",
        help="an OpenAI guided-/improved-diffusion checkpoint (.pt), a model or an ADM "
        "classifier, into a diffusers folder",
    )
    convert.add_argument(
        "checkpoint", help="the .pt file as published (a UNetModel or EncoderUNetModel state dict)"
    )
    convert.add_argument("--out", required=True, metavar="FOLDER", help="the model folder to write")
    convert.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="the published checkpoint's flags (image size, heads, schedule, T); the weights "
        "say the rest",
    )
    flags = [
        ("--image-size", int, "image_size", "the image size the model was trained at"),
        ("--num-heads", int, "num_heads", "attention heads at every level"),
        ("--num-head-channels", int, "num_head_channels", "the width of a head (instead)"),
        ("--num-heads-upsample", int, "num_heads_upsample", "heads of the upsampling path"),
        ("--diffusion-steps", int, "diffusion_steps", "T, the training steps (default 1000)"),
    ]
    for flag, kind, dest, text in flags:
        convert.add_argument(flag, type=kind, dest=dest, metavar="N", help=text)
    convert.add_argument(
        "--use-new-attention-order",
        action=argparse.BooleanOptionalAction,
        help="the qkv layout of use_new_attention_order (default: the preset's, else legacy)",
    )
    convert.add_argument("--noise-schedule", choices=("linear", "cosine"))
    convert.add_argument("--name", help="the model's name (default: the checkpoint's)")
    convert.add_argument(
        "--force", action="store_true", help="replace an existing --out, if it is a model folder"
    )


def run(args: argparse.Namespace) -> int:
    from diffusion_studio.core.convert import convert_to_folder, flags_for

    given = ("image_size", "num_heads", "num_head_channels", "num_heads_upsample",
             "diffusion_steps", "use_new_attention_order", "noise_schedule")  # fmt: skip
    for key in ("image_size", "num_heads", "num_head_channels", "diffusion_steps"):
        value = getattr(args, key)
        if value is not None and not 1 <= value <= 100_000 and value != -1:
            raise InputError(f"--{key.replace('_', '-')} must be from 1 to 100,000, got {value}")
    flags = flags_for(args.preset, **{key: getattr(args, key) for key in given})
    out, notes = convert_to_folder(
        args.checkpoint, args.out, flags, name=args.name, force=args.force
    )
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    print(out)
    return 0
