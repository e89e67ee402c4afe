"""`sample`, `inpaint` and `info`: the jobs of a model, from flags to written PNGs (the same Job
and write_result as the window's)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from diffusion_studio.cli.common import PROG, numbers, whole
from diffusion_studio.cli.options import (
    OPTION_FLAGS,
    add_consistency_option,
    add_jump_options,
    add_sampler_options,
    sampler_options,
)
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_BATCHES
from diffusion_studio.core.request import MAX_SEED

IMAGE_COMMANDS = ("inpaint", "upscale", "colorize", "outpaint")  # of a source image

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier, ClassifierInfo
    from diffusion_studio.core.image_class import ClassSuggestion
    from diffusion_studio.core.job import Job
    from diffusion_studio.core.model import DiffusionModel, ModelInfo
    from diffusion_studio.core.request import SampleRequest
    from diffusion_studio.core.shards import Shard
    from diffusion_studio.core.workflows import Table
    from diffusion_studio.core.write import Output


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parsers of sample, inpaint and info."""
    sample = commands.add_parser("sample", help="generate images")
    inpaint = commands.add_parser(
        "inpaint", help="regenerate the masked part of an image (RePaint)"
    )
    info = commands.add_parser("info", help="describe a model")
    for sub in (sample, inpaint, info):
        sub.add_argument(
            "--model",
            metavar="FOLDER",
            help="a diffusers UNet2DModel folder (default: the embedded model)",
        )
        sub.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, mps")
    for sub in (sample, inpaint):
        add_sampler_options(sub)
        sub.add_argument(
            "--batches",
            type=whole,
            metavar="K",
            default=1,
            help="K batches of -n images, one after the other, the seeds going on (default 1); "
            "under accelerate launch the processes share them out",
        )
    inpaint.add_argument("--image", required=True, metavar="PATH", help="the source image")
    masks = inpaint.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", metavar="PATH", help="a mask image: white = generate")
    from diffusion_studio.core.masks import HALF_SIDES, PRESETS

    names = [f"{n}[-{'|-'.join(HALF_SIDES)}]" if s.sided else n for n, s in PRESETS.items()]
    masks.add_argument("--mask-preset", metavar="NAME", help=", ".join(names))
    add_consistency_option(inpaint)
    inpaint.add_argument(
        "--invert-mask",
        action="store_true",
        help="the mask is white = keep (RePaint's files): invert it",
    )
    inpaint.add_argument(
        "--mask-seed", type=whole, metavar="N", help="seed of a random preset (default: --seed)"
    )
    add_jump_options(inpaint, 10)


def info(args: argparse.Namespace) -> int:
    from diffusion_studio.core.model_files import load_model

    model = load_model(args.model, device=args.device)
    auto = f"{model.info.precision} (what --precision auto runs in here)"
    rows = [*model.info.summary(), ("Device", str(model.device)), ("Precision", auto)]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def generate(args: argparse.Namespace) -> int:
    """The command's jobs, run and written; under `accelerate launch` this process's span of
    each job's seeds (core.shards), into the one --outdir."""
    from tqdm import tqdm

    from diffusion_studio.core.checks import validate
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.moves import network_calls
    from diffusion_studio.core.run import execute
    from diffusion_studio.core.shards import this_shard
    from diffusion_studio.core.write import check_outputs, write

    inpaint = args.command in IMAGE_COMMANDS  # a source image, and RePaint's flags
    shard = this_shard(args.device)
    device = shard.device or args.device
    model = load_model(args.model, device=device)
    scales = numbers(args.classifier_scale, float, "--classifier-scale")
    classifier = guiding_classifier(args, model, scales)
    suggestion = _class_from_image(args, model.info)
    table, jobs = _jobs(args, model, inpaint, scales, classifier, suggestion)
    for job in jobs:  # bad settings are reported before anything about files
        validate(job.request, model, job.jumps, classifier)
    notes = [f"class {suggestion.describe()} (--class NAME to choose)"] if suggestion else []
    notes += jobs[0].notes
    jobs, outputs = _plan(args, table, jobs, shard)
    check_outputs(outputs, args.force)
    shard.wait()  # every process has chosen its files before any is written: one run number
    for note in notes if shard.main else []:  # said once the inputs are known to be good
        print(f"{PROG}: {note}", file=sys.stderr)
    calls = sum(network_calls(job.request, job.jumps) for job in jobs)
    results = []
    quiet = args.quiet or not shard.main
    with tqdm(total=calls, unit="step", desc=args.command, disable=quiet) as bar:
        for job in jobs:
            results.append(
                execute(model, job, on_frame=lambda f: bar.update(), classifier=classifier)
            )
    for path in write(outputs, results, overwrite=args.force):
        print(path)
    shard.wait()
    return 0


def guiding_classifier(
    args: argparse.Namespace, model: DiffusionModel, scales: Sequence[float]
) -> Classifier | None:
    """--classifier, or for the embedded model the classifier shipped to guide it, when a
    classifier scale is above 0 (a --classifier without one would do nothing: refused)."""
    from diffusion_studio.core.model_files import load_classifier
    from diffusion_studio.core.resources import guidance_classifier_dir

    if not any(scales):
        if args.classifier is not None:
            raise InputError("--classifier guides only with a --classifier-scale above 0")
        return None
    folder = args.classifier
    if folder is None:
        shipped = guidance_classifier_dir()
        if args.model is not None or not shipped.is_dir():
            raise InputError("classifier guidance needs a classifier: give --classifier FOLDER")
        folder = shipped
    classifier = load_classifier(folder, device=model.device)
    unfit = classifier.mismatch(model)
    if unfit:
        raise InputError(f"--classifier does not fit the model: {unfit}")
    return classifier


def _jobs(
    args: argparse.Namespace,
    model: DiffusionModel,
    inpaint: bool,
    scales: Sequence[float] = (0.0,),
    classifier: Classifier | None = None,
    suggestion: ClassSuggestion | None = None,
) -> tuple[Table, list[Job]]:
    """The table of the flags (core.workflows.sweep) and its jobs: one cell, or with --class
    all a row per class, and with several classifier scales a column per scale. With no
    --class a class-conditional model makes its default class, as the window does, and an
    inpainting the class its image looks like where that is known (`suggestion`); an
    unconditional model guided by a classifier takes the classifier's classes."""
    from diffusion_studio.core.info import find_class
    from diffusion_studio.core.request import default_request
    from diffusion_studio.core.workflows import Axis, sweep

    info = model.info
    options = sampler_options(
        args.sampler, {name: getattr(args, dest) for dest, name in OPTION_FLAGS}
    )
    settings = {
        **options,
        "sampler": args.sampler,
        "num_inference_steps": args.steps,
        "timestep_spacing": args.spacing,
        "seed": args.seed,
        "batch_size": args.batch,
        "precision": None if args.precision == "auto" else args.precision,
        **(
            {"jump_length": args.jump_length, "jump_n_sample": args.jump_n_sample}
            if inpaint
            else {}
        ),
    }
    request = default_request(
        len(info.class_names), info.default_class, info.null_class, **settings
    )
    chosen = (args.class_ or "").strip().lower()
    names = info.class_names or (classifier.class_names if classifier else ())
    if args.class_ is not None and not names:
        raise InputError(f"{info.name} is not class-conditional; leave --class out")
    labels: list[int | None] = [request.class_label]
    if classifier is not None and not info.class_names:
        labels = [0]
    if chosen == "all":
        labels = list(range(len(names)))
    elif chosen == "unconditional":
        labels = [None]
    elif args.class_ is not None and chosen != "auto":
        labels = [find_class(names, args.class_)]
    if suggestion is not None:
        labels = [suggestion.label]
    guidance = request.guidance_scale if args.guidance is None else args.guidance
    base = replace(request, guidance_scale=guidance)
    rows = [(names[label] if label is not None else "", {"class_label": label}) for label in labels]
    columns = Axis("classifier_scale", tuple(scales)).entries()
    table = sweep("sample", base, rows if len(rows) > 1 else [("", rows[0][1])],
                  columns if len(columns) > 1 else [("", columns[0][1])])  # fmt: skip
    guide = classifier.info if classifier else None
    one = len(table.cells) == 1  # a plain run is in no table: its record says none
    batches = getattr(args, "batches", 1)
    if not 1 <= batches <= MAX_BATCHES:
        raise InputError(f"--batches must be from 1 to {MAX_BATCHES:,}, got {batches}")
    if args.seed + batches * args.batch > MAX_SEED:
        raise InputError(f"--seed {args.seed} leaves too few seeds for {batches} batches")
    jobs = [
        replace(_prepare(args, replace(request, seed=request.seed + k * args.batch), info, guide),
                cell=None if one else cell)
        for cell, request in table.cells
        for k in range(batches)
    ]  # fmt: skip
    return table, jobs


def _prepare(
    args: argparse.Namespace, request: SampleRequest, info: ModelInfo, guide: ClassifierInfo | None
) -> Job:
    """The job of one cell, as the command makes it: a sample, an inpainting (RePaint or
    DDNM), an enlargement or a colorization of --image."""
    from diffusion_studio.core.job import Job

    if args.command == "inpaint":
        return Job.prepare(request, info, classifier=guide, image=args.image, mask=args.mask,
                           mask_preset=args.mask_preset, mask_seed=args.mask_seed,
                           invert_mask_file=args.invert_mask,
                           consistency=args.consistency)  # fmt: skip
    if args.command == "upscale":
        job = Job.upscale(request, info, args.image, args.factor, args.method, args.tiled)
    elif args.command == "colorize":
        job = Job.colorize(request, info, args.image)
    else:
        return Job.prepare(request, info, classifier=guide)
    return replace(job, classifier=guide if job.request.classifier_scale else None)


def _class_from_image(args: argparse.Namespace, info: ModelInfo) -> ClassSuggestion | None:
    """For inpaint with --class auto, or no --class: the class the image looks like
    (core.image_class); None where the shipped classifier does not know the model's classes
    (with no --class: the model's default class then), an InputError for --class auto."""
    from diffusion_studio.core.image_class import can_suggest, suggest_class
    from diffusion_studio.core.job import fit_source

    auto = (args.class_ or "").strip().lower() == "auto"
    if args.command not in IMAGE_COMMANDS:
        if auto:
            raise InputError(
                "--class auto reads the class from the image: it is for inpaint, upscale, "
                "colorize and outpaint"
            )
        return None
    if not info.class_names or not (auto or args.class_ is None):
        return None
    if not can_suggest(info):
        if auto:
            raise InputError(
                f"--class auto: the shipped classifier does not know the classes of "
                f"{info.name}; give --class NAME"
            )
        return None
    image, _, _ = fit_source(args.image, info)
    return suggest_class(image, info)


def _plan(
    args: argparse.Namespace, table: Table, jobs: list[Job], shard: Shard
) -> tuple[list[Job], list[Output]]:
    """The jobs this process runs and the files of each (plan_outputs) and the grid: decided,
    and checked, before anything runs. The grid is labelled: a row per class of --class all, a
    column per classifier scale (each batch's images side by side), each image's seed under
    it. Spread over processes, each runs its span of every job's seeds (_shares)."""
    from diffusion_studio.core.export import ANIMATIONS
    from diffusion_studio.core.record import next_run_number
    from diffusion_studio.core.write import GridFile, GridLabels, plan_outputs

    batches = len(jobs) > len(table.cells)  # --batches: several jobs of each cell
    if shard.count > 1:
        return _shares(args, jobs, shard, whole=batches)
    grid = Path(args.grid) if args.grid else None
    if grid is not None and grid.suffix.lower() != ".png":
        raise InputError(f"--grid {grid} should end in .png")
    trajectory = Path(args.save_trajectory) if args.save_trajectory else None
    if trajectory is not None and trajectory.suffix.lower() not in ANIMATIONS:
        names = " or ".join(ANIMATIONS)
        raise InputError(f"--save-trajectory {trajectory} should end in {names}")
    if trajectory is not None and len(jobs) > 1:
        several = "--batches" if batches else "--class all"
        raise InputError(f"--save-trajectory follows one batch at a time, not {several}")
    if grid is not None and len(table.cells) > 1 and batches:
        raise InputError("--grid lays out a table of settings or --batches, not both at once")
    if args.out and args.outdir:
        raise InputError("give --out (a file name) or --outdir (a folder), not both")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() != ".png":
        raise InputError(f"--out {out} should end in .png")
    outputs: list[Output] = []
    if out is None and (args.outdir or not grid):
        folder = Path(args.outdir or ".")
        first = next_run_number(folder)
        for k, job in enumerate(jobs):
            outputs += plan_outputs(job, folder, f"{first + k:05d}", run=k, trajectory=trajectory)
    elif out is None:  # only the grid (and the steps)
        if trajectory:
            outputs += plan_outputs(jobs[0], ".", "", images=[], trajectory=trajectory)
    else:
        for k, job in enumerate(jobs):
            stem = out.stem
            if len(table.cells) > 1:  # --class all, several scales: the class and scale in it
                names = job.model.class_names or (
                    job.classifier.class_names if job.classifier else ()
                )
                if names:
                    stem += "-" + _slug(names[job.request.class_label or 0])
                if job.request.classifier_scale:
                    stem += f"-cg{job.request.classifier_scale:g}"
            single = None if batches else f"{stem}{out.suffix}"  # else each image's seed
            outputs += plan_outputs(
                job, out.parent, stem, run=k, single_name=single, trajectory=trajectory
            )
    if grid:
        batch = jobs[0].request.batch_size
        seeds = [f"seed {job.request.seed + i}" for job in jobs for i in range(batch)]
        columns = batch * len(table.columns) if len(jobs) > 1 else None
        heads = [label for label, _ in table.columns for _ in range(batch)] if columns else []
        rows = table.row_labels if len(table.rows) > 1 else ()
        heads = heads if len(table.columns) > 1 else []
        labelled = len(jobs) > 1  # one request's batch: a plain grid, as its images are
        labels = GridLabels(rows, tuple(heads), tuple(seeds)) if labelled else None
        outputs.append(GridFile(grid, columns, labels))
    return jobs, outputs


def _shares(
    args: argparse.Namespace, jobs: list[Job], shard: Shard, whole: bool
) -> tuple[list[Job], list[Output]]:
    """This process's share of the jobs, written into --outdir under the names one process
    gives them (run number and seed): with `whole` (--batches) whole batches, batch k to
    process k mod P, so the union is one process's run bit for bit; else of each batch its span
    of the seeds, as a batch of its own (the same images as one process's -n N/P --batches P;
    as one batch of N up to the float rounding of another batch size). An inpainting's inputs
    are written with each batch's first image."""
    from diffusion_studio.core.record import next_run_number
    from diffusion_studio.core.write import plan_outputs

    given = [flag for flag, value in (("--out", args.out), ("--grid", args.grid),
             ("--save-trajectory", args.save_trajectory)) if value]  # fmt: skip
    if given:
        raise InputError(
            f"spread over {shard.count} processes, each writes its own images into --outdir: "
            f"{', '.join(given)} is for one process"
        )
    folder = Path(args.outdir or ".")
    first = next_run_number(folder)  # before any process writes (generate waits for all)
    mine: list[Job] = []
    outputs: list[Output] = []
    for k, job in shard.deal(jobs) if whole else enumerate(jobs):
        span = range(job.request.batch_size) if whole else shard.span(job.request.batch_size)
        if not span:
            continue
        request = replace(job.request, seed=job.request.seed + span.start, batch_size=len(span))
        mine.append(replace(job, request=request))
        outputs += plan_outputs(
            mine[-1], folder, f"{first + k:05d}", run=len(mine) - 1, inputs=span.start == 0
        )
    return mine, outputs


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
