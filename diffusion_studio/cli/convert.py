"""`convert`: an OpenAI guided- or improved-diffusion checkpoint (a model or an ADM classifier)
into a diffusers folder. Their scripts' flags are taken as their READMEs print them
(`--class_cond True`) or in this command line's spelling (`--class-cond`)."""

from __future__ import annotations

import argparse
import sys

from diffusion_studio.cli.common import PROG
from diffusion_studio.core.openai_flags import FLAGS, PRESETS, parse_value

ROLES = {
    "apply": "What the weights cannot show (applied)",
    "check": "What the weights show (checked against them)",
    "ignore": "Accepted and ignored (they do not change the network's output)",
    "sampling": "Sampling flags (accepted and ignored: chosen when sampling)",
}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser(
        "convert",
        help="an OpenAI guided-/improved-diffusion checkpoint (.pt), a model or an ADM "
        "classifier, into a diffusers folder",
        description="Paste the flags the checkpoint was trained with (MODEL_FLAGS, "
        "DIFFUSION_FLAGS, CLASSIFIER_FLAGS) as guided-diffusion's README prints them, "
        "--num_channels 256 or --num-channels 256, or choose a --preset.",
    )
    convert.add_argument(
        "checkpoint", help="the .pt file as published (a UNetModel or EncoderUNetModel state dict)"
    )
    convert.add_argument("--out", required=True, metavar="FOLDER", help="the model folder to write")
    convert.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="the published checkpoint's flags (image size, heads, schedule, T); the weights "
        "say the rest",
    )
    convert.add_argument("--name", help="the model's name (default: the checkpoint's)")
    convert.add_argument(
        "--force", action="store_true", help="replace an existing --out, if it is a model folder"
    )
    groups = {role: convert.add_argument_group(title) for role, title in ROLES.items()}
    for spec in FLAGS:
        groups[spec.role].add_argument(
            spec.cli,
            f"--{spec.name}",
            dest=f"gd_{spec.name}",
            metavar="BOOL" if spec.kind == "bool" else "VALUE",
            nargs="?" if spec.kind == "bool" else None,
            const=True if spec.kind == "bool" else None,
            help=spec.text,
        )


def run(args: argparse.Namespace) -> int:
    from diffusion_studio.core.convert import convert_to_folder
    from diffusion_studio.core.openai_flags import flags_for

    given = {}
    for spec in FLAGS:
        value = getattr(args, f"gd_{spec.name}")
        if value is not None:
            given[spec.name] = parse_value(spec, value)
    flags = flags_for(args.preset, given)
    out, notes = convert_to_folder(
        args.checkpoint, args.out, flags, name=args.name, force=args.force
    )
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    print(out)
    return 0
