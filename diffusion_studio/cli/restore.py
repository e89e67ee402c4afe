"""`upscale` and `colorize`: the course's other tasks a mask or a linear degradation solves,
super-resolution (on the stride grid with RePaint, or DDNM's block averages) and colorization
(DDNM's luminance), with sample's options and outputs."""

from __future__ import annotations

import argparse

from diffusion_studio.cli.common import whole
from diffusion_studio.cli.options import add_jump_options, add_sampler_options


def add_parsers(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser(
        "upscale",
        help="enlarge a small picture 2x or 4x (super-resolution)",
        description="The picture is fitted to 1/factor of the model's size and enlarged to it. "
        "ddnm keeps its factor x factor block averages exactly (DDNM's null-space projection, "
        "Wang et al. 2023); grid puts its pixels on the stride grid and lets RePaint fill the "
        "rest (the course's every-second-pixel mask). --jump-n-sample above 1 adds DDNM+'s "
        "time travel (RePaint's jumps back).",
    )
    colorize = commands.add_parser(
        "colorize",
        help="colour a grey picture (its luminance is kept exactly: DDNM)",
    )
    for sub in (upscale, colorize):
        sub.add_argument("--model", metavar="FOLDER", help="default: the embedded model")
        sub.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, mps")
        add_sampler_options(sub)
        sub.add_argument("--image", required=True, metavar="PATH", help="the picture")
        add_jump_options(sub, 1)
    upscale.add_argument("--factor", type=whole, choices=(2, 4), default=2)
    upscale.add_argument("--method", choices=("ddnm", "grid"), default="ddnm")
