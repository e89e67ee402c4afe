"""`compare` and `fork`: the course's comparisons from one noise, and a run continued from any
step of another, with other settings."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from diffusion_studio.cli.common import PROG, number, whole
from diffusion_studio.core.errors import InputError


def add_parsers(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="a table of settings from one noise (DDPM against DDIM, steps by eta, ...), "
        "each cell's distance to a reference",
        description="Every setting given several values (comma-separated) is swept; all "
        "cells start from the same x_T (one seed). The steps make the columns (or --columns), "
        "the other swept settings the rows. Each cell is measured against a reference: DDIM "
        "with eta 0 at every training step (at most 1,000), or --reference ROW,COLUMN.",
    )
    _common(compare)
    compare.add_argument("--sampler", default="ddim", metavar="ddpm,ddim,dpmpp_2m")
    compare.add_argument("--steps", default="50", metavar="S[,S...]")
    compare.add_argument("--eta", metavar="E[,E...]", help="DDIM's eta (default 0)")
    compare.add_argument("--spacing", metavar="NAME[,NAME...]", help="timestep spacings")
    compare.add_argument("--variance", metavar="NAME[,NAME...]", help="DDPM's variances")
    compare.add_argument("--guidance", metavar="G[,G...]", help="classifier-free guidance")
    compare.add_argument("--classifier-scale", default="0", metavar="S[,S...]")
    compare.add_argument("--seed", type=whole, default=0, metavar="N", help="the one x_T's seed")
    compare.add_argument(
        "--columns",
        choices=("sampler", "steps", "eta", "spacing", "variance", "guidance", "classifier_scale"),
        help="the setting of the columns",
    )
    compare.add_argument(
        "--reference", metavar="ROW,COLUMN", help="the cell the others are measured against"
    )
    compare.add_argument("--out", required=True, metavar="FOLDER", help="each cell's PNG")
    compare.add_argument("--grid", metavar="PATH", help="the labelled table as one PNG")

    fork = commands.add_parser(
        "fork",
        help="continue a run the studio wrote from any of its steps, with other settings",
        description="Rebuilds PARENT.png's run from its record, takes it up after --at-step "
        "network calls and goes on with the settings given (the parent's where not given; "
        "the steps: those it had left, respaced from that step's timestep when another count "
        "is given). Unchanged, a fork ends on the parent's image, bit for bit.",
    )
    fork.add_argument("parent", metavar="PARENT.png", help="a PNG the studio wrote")
    fork.add_argument("--at-step", type=whole, required=True, metavar="K",
                      help="network calls of the parent done before the fork")  # fmt: skip
    _common(fork)
    fork.add_argument("--sampler", choices=("ddpm", "ddim", "dpmpp_2m"))
    fork.add_argument(
        "--steps",
        type=whole,
        metavar="N",
        help="timesteps after the fork (default: as many as the parent had left there)",
    )
    fork.add_argument("--eta", type=number)
    fork.add_argument("--spacing", choices=("leading", "trailing", "linspace", "quadratic"))
    fork.add_argument("--variance", choices=("fixed_small", "fixed_large", "learned_range"))
    fork.add_argument("--guidance", type=number)
    fork.add_argument("--classifier-scale", type=number)
    fork.add_argument("--out", required=True, metavar="PATH", help="the fork's PNG")


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--model", metavar="FOLDER", help="default: the embedded model")
    sub.add_argument("--device", default="auto")
    sub.add_argument("--class", dest="class_", metavar="NAME|INDEX|unconditional")
    sub.add_argument("--classifier", metavar="FOLDER")
    sub.add_argument("--force", action="store_true", help="replace existing files")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def run_compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diffusion_studio.cli.generate import guiding_classifier
    from diffusion_studio.core.checks import validate
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.moves import network_calls
    from diffusion_studio.core.request import default_request
    from diffusion_studio.core.run import execute
    from diffusion_studio.core.workflows import (
        AXES,
        axes_from,
        compare,
        comparison_outputs,
        product,
        split_axes,
        sweep,
    )
    from diffusion_studio.core.write import check_outputs, write

    model = load_model(args.model, device=args.device)
    values = _swept(args)
    classifier = guiding_classifier(args, model, values["classifier_scale"])
    info = model.info
    base = default_request(len(info.class_names), info.default_class, info.null_class,
                           seed=args.seed)  # fmt: skip
    base = replace(base, class_label=_class_of(args, model, base.class_label, classifier))
    if len(values["guidance"]) == 1:
        base = replace(base, guidance_scale=values["guidance"][0])
    base = replace(base, **{AXES[k][0]: v[0] for k, v in values.items() if len(v) == 1})
    _refuse_unread(values)
    rows, columns = split_axes(axes_from(values), args.columns)
    table = sweep("compare", base, product(rows), product(columns))
    reference = _reference(args.reference)
    comparison = compare(table, info, model.schedule.num_train_timesteps,
                         classifier=classifier.info if classifier else None,
                         reference=reference)  # fmt: skip
    for job in comparison.jobs:
        validate(job.request, model, False, classifier)
    folder, grid = Path(args.out), Path(args.grid) if args.grid else None
    if grid is not None and grid.suffix.lower() != ".png":
        raise InputError(f"--grid {grid} should end in .png")
    check_outputs(comparison_outputs(comparison, folder, grid=grid or False), args.force)
    calls = sum(network_calls(job.request, False) for job in comparison.jobs)
    print(f"{PROG}: {len(comparison.jobs)} runs, {calls:,} network calls", file=sys.stderr)
    results = []
    with tqdm(total=calls, unit="step", desc="compare", disable=args.quiet) as bar:
        for job in comparison.jobs:
            results.append(
                execute(model, job, on_frame=lambda f: bar.update(), classifier=classifier)
            )
    images = [r.images[0] for r in results]
    outputs = comparison_outputs(comparison, folder, images, grid=grid or False)
    for path in write(outputs, results, overwrite=args.force):
        print(path)
    print(_rms_table(table, comparison.distances(images), comparison), file=sys.stderr)
    return 0


def _swept(args: argparse.Namespace) -> dict[str, list]:
    from diffusion_studio.core.workflows import AXES, parse_axis

    values: dict[str, list] = {}
    for name in AXES:  # each a flag of its name, --classifier-scale for classifier_scale
        text = getattr(args, name)
        if text is not None:
            try:
                values[name] = list(parse_axis(name, text))
            except InputError as exc:
                raise InputError(f"--{name.replace('_', '-')}: {exc}") from None
    values.setdefault("guidance", [])
    return values


def _refuse_unread(values: dict[str, list]) -> None:
    """A swept option no swept sampler reads would do nothing (--eta with DDPM alone)."""
    from diffusion_studio.core.request import SAMPLERS

    samplers = [SAMPLERS[s] for s in values["sampler"]]
    for dest, option in (("eta", "eta"), ("variance", "variance_type")):
        if dest in values and not any(option in s.options for s in samplers):
            users = " and ".join(s.label for s in SAMPLERS.values() if option in s.options)
            raise InputError(f"--{dest} does nothing with {samplers[0].label}: it is an option "
                             f"of {users}")  # fmt: skip


def _class_of(args, model, default: int | None, classifier) -> int | None:
    from diffusion_studio.core.info import find_class

    if args.class_ is None:
        return 0 if classifier is not None and not model.info.class_names else default
    names = model.info.class_names or (classifier.class_names if classifier else ())
    if not names:
        raise InputError(f"{model.info.name} is not class-conditional; leave --class out")
    if args.class_.strip().lower() == "unconditional":
        return None
    return find_class(names, args.class_)


def _reference(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise InputError(f"--reference takes ROW,COLUMN, counted from 0, got {text!r}")
    return int(parts[0]), int(parts[1])


def _rms_table(table, distances: list[float], comparison) -> str:
    width = max([12, *(len(label) + 2 for label in table.row_labels)])
    heads = "".join(f"{label:>12}" for label in table.column_labels)
    lines = ["RMS to the reference, in pixel values (0 to 255):", f"{'':<{width}}{heads}"]
    for r, label in enumerate(table.row_labels):
        cells = [
            "reference" if k == comparison.reference else f"{distances[k]:.2f}"
            for k, (cell, _) in enumerate(table.cells)
            if cell.row == r
        ]
        lines.append(f"{label:<{width}}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)


def run_fork(args: argparse.Namespace) -> int:
    from diffusion_studio.cli.generate import guiding_classifier
    from diffusion_studio.cli.options import sampler_options
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.plan import build_plan
    from diffusion_studio.core.record import read_record
    from diffusion_studio.core.run import execute
    from diffusion_studio.core.workflows import applied
    from diffusion_studio.core.write import check_outputs, plan_outputs, write

    record = read_record(args.parent)
    if record is None:
        raise InputError(f"{args.parent} holds no record of the studio: it cannot be forked")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out} should end in .png")
    model = load_model(args.model, device=args.device)
    if record.model_hash and record.model_hash != model.info.short_hash:
        raise InputError(
            f"{Path(args.parent).name} was made with {record.model} [{record.model_hash}], not "
            f"{model.info.name} [{model.info.short_hash}]: give its folder with --model"
        )
    before = record.request
    scales = [before.classifier_scale, args.classifier_scale or 0.0]
    classifier = guiding_classifier(args, model, scales)
    guide = classifier.info if classifier else None
    parent = record.job(model.info, guide if record.classifier else None)
    plan = build_plan(model, parent, classifier)[0]
    calls = len(plan.calls)
    if not 0 <= args.at_step < calls:
        raise InputError(
            f"the parent made {calls} network calls: --at-step is from 0 to {calls - 1}"
        )
    changes = {
        "sampler": args.sampler,
        "eta": args.eta,
        "timestep_spacing": args.spacing,
        "variance_type": args.variance,
        "guidance_scale": args.guidance,
        "classifier_scale": args.classifier_scale,
        "num_inference_steps": args.steps or plan.steps_left(args.at_step),
    }
    request = applied(before, {k: v for k, v in changes.items() if v is not None})
    sampler_options(request.sampler, {"eta": args.eta, "variance_type": args.variance})
    if args.class_ is not None:
        request = replace(request, class_label=_class_of(args, model, None, classifier))
    job = parent.forked(request, args.at_step, guide)
    outputs = plan_outputs(job, out.parent, out.stem, single_name=out.name)
    check_outputs(outputs, args.force)
    result = execute(model, job, classifier=classifier)
    for path in write(outputs, [result], overwrite=args.force):
        print(path)
    return 0
