"""`eval`: class accuracy and Frechet distance of samplers by steps, eta and guidance, in the
shape of the DDIM paper's Table 1."""

from __future__ import annotations

import argparse
import sys

from diffusion_studio.cli.common import numbers, whole
from diffusion_studio.cli.generate import guiding_classifier
from diffusion_studio.core.errors import InputError

MAX_EVAL_SAMPLES = 1_000_000


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from diffusion_studio.core.request import PRECISIONS, SAMPLERS

    evaluate = commands.add_parser(
        "eval", help="class accuracy and Frechet distance of samplers (DDIM paper, Table 1)"
    )
    evaluate.add_argument("--model", metavar="FOLDER", help="default: the embedded model")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument(
        "--sampler",
        choices=(*SAMPLERS, "both", "all"),
        default="both",
        help="ddim rows (one per eta), ddpm rows (beta; beta-tilde too unless DDIM eta=1, the "
        "same sampler, has a row), both (the DDIM paper's table), dpmpp_2m, or all",
    )
    evaluate.add_argument(
        "--steps",
        default="10,20,50,100",
        metavar="S,S,...",
        help="inference steps, one column each (default 10,20,50,100)",
    )
    evaluate.add_argument(
        "--eta",
        metavar="E,E,...",
        help="DDIM eta values, one row each (default 0,0.5,1)",
    )
    evaluate.add_argument(
        "-n",
        type=whole,
        default=512,
        metavar="N",
        help="samples per setting, in the classes' shares of the real data (default 512)",
    )
    evaluate.add_argument(
        "--guidance",
        default="3",
        metavar="G[,G...]",
        help="classifier-free guidance scales, a row each; 0 = the unconditional mode (default 3)",
    )
    evaluate.add_argument(
        "--classifier-scale",
        default="0",
        metavar="S[,S...]",
        help="classifier guidance scales, a row each (default 0: none)",
    )
    evaluate.add_argument(
        "--classifier",
        metavar="FOLDER",
        help="the guiding noise-aware classifier (default: the one shipped for the embedded "
        "model); the score's classifier is another network",
    )
    evaluate.add_argument(
        "--spacing",
        choices=("leading", "trailing", "linspace", "quadratic"),
        help="timestep spacing (default: the model's)",
    )
    evaluate.add_argument("--seed", type=whole, default=0, metavar="N")
    evaluate.add_argument(
        "--precision",
        choices=("auto", *PRECISIONS),
        default="auto",
        help="the network's arithmetic (default auto: bfloat16 on a CPU with bfloat16 "
        "instructions, float32 elsewhere)",
    )
    evaluate.add_argument(
        "--batch",
        type=whole,
        metavar="N",
        help="images per network call (default 32 on a CPU, where small batches run faster; "
        "256 on a GPU)",
    )
    evaluate.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network first: a few minutes, then about 1.5x faster on a CPU",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from diffusion_studio.core.checks import validate
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.request import SAMPLERS, SampleRequest
    from diffusion_studio.core.shards import this_shard
    from diffusion_studio.core.train.evaluate import (
        evaluation_rows,
        format_table,
        load_eval_classifier,
    )
    from diffusion_studio.core.train.samples import evaluate_setting
    from diffusion_studio.core.workflows import Axis, sweep

    if not 1 <= args.n <= MAX_EVAL_SAMPLES:
        raise InputError(f"-n must be from 1 to {MAX_EVAL_SAMPLES:,} samples, got {args.n}")
    shard = this_shard(args.device)  # under accelerate launch: this process's chunks
    say = print if shard.main else lambda *_, **__: None
    model = load_model(args.model, device=shard.device or args.device)
    if args.compile:
        model.compile()
    classifier, card, real = load_eval_classifier()
    if model.info.class_names != card.class_names:
        raise InputError(
            f"the evaluation classifier knows {', '.join(card.class_names)}; "
            f"{model.info.name} has other classes"
        )
    steps = numbers(args.steps, int, "--steps")
    if (
        args.eta is not None
        and args.sampler in SAMPLERS
        and "eta" not in SAMPLERS[args.sampler].options
    ):
        label = SAMPLERS[args.sampler].label
        raise InputError(f"--eta does nothing with {label}: it is an option of DDIM")
    etas = numbers(args.eta or "0,0.5,1", float, "--eta")
    guidances = numbers(args.guidance, float, "--guidance")
    scales = numbers(args.classifier_scale, float, "--classifier-scale")
    guide = guiding_classifier(args, model, scales)
    if args.batch is not None and args.batch < 1:
        raise InputError("--batch must be at least 1")
    batch = min(args.batch or (32 if model.device.type == "cpu" else 256), args.n)
    # the DDIM paper's Table 1 (core.workflows.sweep): a row per sampler setting, guidance
    # and classifier scale, a column per number of steps
    rows = []
    for name, settings in evaluation_rows(args.sampler, etas):
        for g in guidances:
            for c in scales:
                label = name + (f" cfg={g:g}" if len(guidances) > 1 else "")
                label += f" cg={c:g}" if len(scales) > 1 or c else ""
                # the class of each sample is set when sampling; a guided one needs one here
                guided = {
                    "guidance_scale": g,
                    "classifier_scale": c,
                    "class_label": 0 if c else None,
                }
                rows.append((label, {**settings, **guided}))
    precision = model.info.precision if args.precision == "auto" else args.precision
    base = SampleRequest(timestep_spacing=args.spacing, seed=args.seed, precision=precision)
    table = sweep("eval", base, rows, Axis("steps", tuple(steps)).entries())
    grid = [
        (label, [request for cell, request in table.cells if cell.row == r])
        for r, label in enumerate(table.row_labels)
    ]
    for _, settings in grid:  # every setting is checked before the first is run
        for setting in settings:
            validate(replace(setting, batch_size=batch), model, classifier=guide)
    guided = f", classifier {guide.name}" if guide else ""
    say(
        f"{model.info.name}: {args.n} samples per setting, guidance {args.guidance}{guided}, "
        f"device {model.device}, {precision}"
    )
    size = card.resolution
    if model.info.resolution != (size, size):
        height, width = model.info.resolution
        scored = f"{size}x{size} (Lanczos, as the data was made)"
        say(f"its {width}x{height} samples are scored at {scored}")
    total = len(grid) * len(steps)
    quiet = args.quiet or not shard.main
    with tqdm(total=total, unit="setting", desc="eval", disable=quiet) as progress:
        table = []
        for name, settings in grid:
            scores = []
            for setting in settings:
                scores.append(
                    evaluate_setting(
                        model,
                        setting,
                        classifier,
                        real,
                        args.n,
                        batch,
                        guide,
                        card.class_counts,
                        size,
                        shard,
                    )
                )
                progress.update()
                if not quiet:  # a long table shows each setting as it is done
                    progress.write(
                        f"{name} S={setting.num_inference_steps}: FD "
                        f"{scores[-1].frechet_distance:.3f}, accuracy "
                        f"{scores[-1].class_accuracy:.3f}",
                        file=sys.stderr,
                    )
            table.append((name, scores))
    floor = card.floor_at(args.n)
    say(
        "\nFrechet distance in the classifier's features (lower is better); real-vs-real floor "
        + (f"{floor:.3f} ({args.n} real images against all), " if floor is not None else "")
        + f"{card.real_floor:.3f} (two halves of the data)"
    )
    say(format_table(table, steps, "frechet_distance"))
    say(f"\nClass accuracy (the classifier's held-out accuracy: {card.held_out_accuracy:.3f})")
    say(format_table(table, steps, "class_accuracy"))
    return 0
