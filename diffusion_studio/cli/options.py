"""The flags of the commands that run a model (sample, inpaint, upscale, colorize): the
sampler's settings, RePaint's jumps, the outputs; and the refusal of a sampler's option that
the chosen sampler would ignore."""

from __future__ import annotations

import argparse

from diffusion_studio.cli.common import number, whole
from diffusion_studio.core.errors import InputError


def add_jump_options(sub: argparse.ArgumentParser, resamples: int) -> None:
    """RePaint's resampling (DDNM+'s time travel): --jump-length and --jump-n-sample."""
    sub.add_argument(
        "--jump-length",
        type=whole,
        metavar="N",
        default=10,
        help="steps to jump back when resampling (RePaint; DDNM+'s time travel) (default 10)",
    )
    sub.add_argument(
        "--jump-n-sample",
        type=whole,
        metavar="N",
        default=resamples,
        help=f"times each jump is resampled; 1 = none (default {resamples})",
    )


def add_consistency_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--consistency",
        choices=("repaint", "ddnm"),
        default="repaint",
        help="how the known pixels are kept: RePaint's merge of x_t after each step (default), "
        "or DDNM's projection of the predicted x_0 (Wang et al. 2023)",
    )


def add_sampler_options(sub: argparse.ArgumentParser) -> None:
    from diffusion_studio.core.request import (
        OPTION_TIPS,
        PRECISIONS,
        SAMPLERS,
        TIMESTEP_SPACINGS,
        VARIANCE_TYPES,
    )

    tips = "; ".join(f"{s.name}: {s.tip}" for s in SAMPLERS.values())
    sub.add_argument("--sampler", choices=tuple(SAMPLERS), default="ddim", help=tips)
    sub.add_argument(
        "--steps", type=whole, metavar="N", default=50, help="inference steps (default 50)"
    )
    # None: not given (refused where the sampler ignores it; the request's default otherwise)
    sub.add_argument("--eta", type=number, help=OPTION_TIPS["eta"] + " (default 0)")
    sub.add_argument(
        "--use-clipped-model-output",
        action=argparse.BooleanOptionalAction,
        help=OPTION_TIPS["use_clipped_model_output"] + " (default: on)",
    )
    sub.add_argument(
        "--spacing",
        choices=TIMESTEP_SPACINGS,
        help=OPTION_TIPS["timestep_spacing"] + " (default: the model's)",
    )
    sub.add_argument(
        "--variance",
        choices=VARIANCE_TYPES,
        help=OPTION_TIPS["variance_type"] + " (default: the model's)",
    )
    sub.add_argument(
        "--seed", type=whole, metavar="N", default=0, help="image i of a batch: seed + i"
    )
    sub.add_argument("-n", "--batch", type=whole, metavar="N", default=1, help="images (default 1)")
    sub.add_argument(
        "--class",
        dest="class_",
        metavar="NAME|INDEX|all|unconditional|auto",
        help="the class to generate (class-conditional models; default: the model's default "
        "class); all: -n of each class; unconditional: the null class; auto (inpaint): the "
        "class the image looks like to the shipped classifier, the default of inpaint for a "
        "model of its classes (the embedded one)",
    )
    sub.add_argument(
        "--guidance",
        type=number,
        metavar="SCALE",
        help="classifier-free guidance: 1 = off, 0 = unconditional (default: 3 for a class-"
        "conditional model with a null class, else 1)",
    )
    sub.add_argument(
        "--classifier-scale",
        default="0",
        metavar="S[,S...]",
        help=OPTION_TIPS["classifier_scale"] + " Several (0,2,5,10): a run each, the columns "
        "of the grid (default 0)",
    )
    sub.add_argument(
        "--classifier",
        metavar="FOLDER",
        help="the noise-aware classifier of classifier guidance (default: the one shipped for "
        "the embedded model)",
    )
    sub.add_argument(
        "--precision",
        choices=("auto", *PRECISIONS),
        default="auto",
        help=OPTION_TIPS["precision"] + " (default auto)",
    )
    sub.add_argument(
        "--out",
        metavar="PATH",
        help="the PNG; several images are PATH's stem plus -SEED.png (default: --outdir)",
    )
    sub.add_argument(
        "--outdir",
        metavar="FOLDER",
        help="write into FOLDER as the window does: RUN-SEED.png, RUN being the run's number "
        "(00001, 00002...) (default: the current folder, when --out and --grid are not given)",
    )
    sub.add_argument("--grid", metavar="PATH", help="also write all images as one grid PNG")
    sub.add_argument(
        "--save-trajectory",
        metavar="PATH",
        help="the denoising steps (x_t beside the predicted x0) as an animation (.gif, .webp)",
    )
    sub.add_argument("--force", action="store_true", help="replace existing files")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


OPTION_FLAGS = (("eta", "eta"), ("use_clipped_model_output", "use_clipped_model_output"),
            ("variance", "variance_type"))  # fmt: skip
"""The flags of the samplers' own options: (argparse dest, SampleRequest field)."""


def sampler_options(sampler: str, given: dict[str, object]) -> dict[str, object]:
    """The options given (None: not given) that `sampler` reads; InputError for one it
    ignores, naming the samplers that read it (`--sampler ddpm --eta 0.5` did nothing and was
    recorded)."""
    from diffusion_studio.core.request import SAMPLERS

    spec = SAMPLERS[sampler]
    for name, value in given.items():
        if value is not None and name not in spec.options:
            users = [s.label for s in SAMPLERS.values() if name in s.options]
            flag = "--" + next(dest for dest, field in OPTION_FLAGS if field == name).replace(
                "_", "-"
            )
            raise InputError(
                f"{flag} does nothing with {spec.label}: it is an option of {' and '.join(users)}"
            )
    return {name: value for name, value in given.items() if value is not None}
