"""`diffusion-studio`: the window with no command; headless jobs as subcommands.

    diffusion-studio [FILE ...]           open the studio (with images, or PNGs it exported)
    diffusion-studio sample  [options]    generate images
    diffusion-studio inpaint [options]    regenerate the masked part of an image (RePaint)
    diffusion-studio info    [--model]    describe a model

Bad input gives one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from diffusion_studio import __version__
from diffusion_studio.core.errors import InputError, OutputExistsError

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier
    from diffusion_studio.core.model import DiffusionModel
    from diffusion_studio.core.run import Job

PROG = "diffusion-studio"
MAX_EVAL_SAMPLES = 1_000_000
EXIT_BAD_INPUT = 2


def _number(text: str) -> float:
    """argparse's type for a float flag: finite numbers only (float() takes nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="A studio for pixel-space diffusion models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    gui = commands.add_parser("gui", help="open the studio window (the default)")
    gui.add_argument("files", nargs="*", metavar="FILE", help="images, or PNGs it exported")
    sample = commands.add_parser("sample", help="generate images")
    inpaint = commands.add_parser(
        "inpaint", help="regenerate the masked part of an image (RePaint)"
    )
    info = commands.add_parser("info", help="describe a model")
    _add_train_parser(commands)
    _add_train_parser(commands, "classifier")
    _add_eval_parser(commands)
    _add_convert_parser(commands)
    for sub in (sample, inpaint, info):
        sub.add_argument(
            "--model",
            metavar="FOLDER",
            help="a diffusers UNet2DModel folder (default: the embedded model)",
        )
        sub.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, mps")
    for sub in (sample, inpaint):
        _add_sampler_options(sub)
    inpaint.add_argument("--image", required=True, metavar="PATH", help="the source image")
    masks = inpaint.add_mutually_exclusive_group(required=True)
    masks.add_argument("--mask", metavar="PATH", help="a mask image: white = generate")
    from diffusion_studio.core.masks import HALF_SIDES, PRESETS

    names = [f"{n}[-{'|-'.join(HALF_SIDES)}]" if s.sided else n for n, s in PRESETS.items()]
    masks.add_argument("--mask-preset", metavar="NAME", help=", ".join(names))
    inpaint.add_argument(
        "--invert-mask",
        action="store_true",
        help="the mask is white = keep (RePaint's files): invert it",
    )
    inpaint.add_argument(
        "--mask-seed", type=int, metavar="N", help="seed of a random preset (default: --seed)"
    )
    inpaint.add_argument(
        "--jump-length",
        type=int,
        metavar="N",
        default=10,
        help="RePaint: steps to jump back when resampling (default 10)",
    )
    inpaint.add_argument(
        "--jump-n-sample",
        type=int,
        metavar="N",
        default=10,
        help="RePaint: times each jump is resampled; 1 = no resampling (default 10)",
    )
    return parser


def _add_sampler_options(sub: argparse.ArgumentParser) -> None:
    from diffusion_studio.core.request import (
        OPTION_TIPS,
        SAMPLERS,
        TIMESTEP_SPACINGS,
        VARIANCE_TYPES,
    )

    tips = "; ".join(f"{s.name}: {s.tip}" for s in SAMPLERS.values())
    sub.add_argument("--sampler", choices=tuple(SAMPLERS), default="ddim", help=tips)
    sub.add_argument(
        "--steps", type=int, metavar="N", default=50, help="inference steps (default 50)"
    )
    sub.add_argument("--eta", type=_number, default=0.0, help=OPTION_TIPS["eta"] + " (default 0)")
    sub.add_argument(
        "--use-clipped-model-output",
        action=argparse.BooleanOptionalAction,
        default=True,
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
        "--seed", type=int, metavar="N", default=0, help="image i of a batch: seed + i"
    )
    sub.add_argument("-n", "--batch", type=int, metavar="N", default=1, help="images (default 1)")
    sub.add_argument(
        "--class",
        dest="class_",
        metavar="NAME|INDEX|all|unconditional",
        help="the class to generate (class-conditional models; default: the model's default "
        "class); all: -n of each class; unconditional: the null class",
    )
    sub.add_argument(
        "--guidance",
        type=_number,
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
    sub.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the network")
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


def _add_train_parser(commands: argparse._SubParsersAction, task: str = "diffusion") -> None:
    """`train` (a diffusion model) or `train-classifier` (a noise-aware classifier): the same
    data, checkpoints, resume and progress; the flags of each task's own network."""
    from diffusion_studio.core.train.config import (
        CLASSIFIER_PRESETS,
        LR_SCHEDULES,
        UNET_PRESETS,
        TrainConfig,
        classifier_defaults,
    )

    classifier = task == "classifier"
    defaults = classifier_defaults() if classifier else TrainConfig(data="", output="")
    if classifier:
        train = commands.add_parser(
            "train-classifier",
            help="train a noise-aware classifier (for classifier guidance) on labelled images",
        )
    else:
        train = commands.add_parser("train", help="train a model on a folder of images or an .npz")
    train.set_defaults(task=task)
    train.add_argument(
        "data",
        help="a folder of images (recursive) or an .npz with images, "
        "and optional labels and categories" + (" (labels needed)" if classifier else ""),
    )
    what = "classifier" if classifier else "model"
    train.add_argument("--out", required=True, metavar="FOLDER", help=f"the {what} folder to write")
    presets = CLASSIFIER_PRESETS if classifier else UNET_PRESETS
    train.add_argument(
        "--preset",
        choices=tuple(presets),
        default=defaults.preset,
        help=f"network size (default {defaults.preset})",
    )
    options = [
        ("--resolution", int, "resolution", "image size in pixels"),
        ("--steps", int, "steps", "optimizer steps in all"),
        ("--batch-size", int, "batch_size", "images per step (over all GPUs)"),
        ("--lr", _number, "learning_rate", "AdamW learning rate"),
        ("--warmup", int, "warmup_steps", "steps of linear learning-rate warm-up"),
        ("--ema-decay", _number, "ema_decay", "EMA decay of the weights that are saved"),
        ("--seed", int, "seed", "seed of the initial weights and of every step's draws"),
        ("--checkpoint-every", int, "checkpoint_every", "steps between checkpoints"),
    ]
    if classifier:
        options += [
            ("--sample-every", int, "sample_every", "steps between held-out accuracy checks"),
            ("--holdout", _number, "holdout", "share of the images kept out, for the accuracy"),
        ]
    else:
        options += [
            ("--p-uncond", _number, "p_uncond", "probability of dropping the label (guidance)"),
            ("--sample-every", int, "sample_every", "steps between preview grids"),
        ]
    for flag, kind, field, text in options:
        default = getattr(defaults, field)
        train.add_argument(
            flag,
            type=kind,
            dest=field,
            default=default,
            metavar="N",
            help=f"{text} (default {default})",
        )
    if classifier:
        train.add_argument(
            "--noise-of",
            metavar="FOLDER",
            help="the model whose noise schedule x_t is drawn from (default: the embedded model)",
        )
    else:
        train.add_argument(
            "--prediction-type",
            choices=("epsilon", "v_prediction"),
            default=defaults.prediction_type,
        )
        train.add_argument(
            "--beta-schedule", choices=("linear", "cosine"), default=defaults.beta_schedule
        )
    train.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=defaults.lr_schedule,
        help="the learning rate after the warm-up: constant, or decaying to 0 at --steps "
        f"(default {defaults.lr_schedule})",
    )
    train.add_argument("--hflip", action="store_true", help="random horizontal flips")
    train.add_argument(
        "--checkpoint-dir",
        metavar="FOLDER",
        help="where checkpoints and previews go (default: OUT-checkpoints)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    if not classifier:
        train.add_argument(
            "--init",
            dest="init_from",
            metavar="FOLDER",
            help="start from this model's weights (same preset; fine-tuning, or epsilon to v)",
        )
    train.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    train.add_argument(
        "--force",
        action="store_true",
        help=f"replace an existing --out, if it is a {what} folder (nothing else is replaced)",
    )
    train.add_argument("--name", help=f"the {what}'s name (default: the folder's)")
    train.add_argument("--license", default="", help="the licence of the weights")
    train.add_argument("--data-description", default="", help="what the data is, for the card")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    from diffusion_studio.core.request import SAMPLERS

    evaluate = commands.add_parser(
        "eval", help="class accuracy and Frechet distance of samplers (DDIM paper, Table 1)"
    )
    evaluate.add_argument("--model", metavar="FOLDER", help="default: the embedded model")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument(
        "--sampler",
        choices=(*SAMPLERS, "both"),
        default="both",
        help="ddim rows (one per eta), ddpm rows (beta; beta-tilde too unless DDIM eta=1, the "
        "same sampler, has a row), or both",
    )
    evaluate.add_argument(
        "--steps",
        default="10,20,50,100",
        metavar="S,S,...",
        help="inference steps, one column each (default 10,20,50,100)",
    )
    evaluate.add_argument(
        "--eta",
        default="0,0.5,1",
        metavar="E,E,...",
        help="DDIM eta values, one row each (default 0,0.5,1)",
    )
    evaluate.add_argument(
        "-n",
        type=int,
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
    evaluate.add_argument("--seed", type=int, default=0, metavar="N")
    evaluate.add_argument(
        "--batch",
        type=int,
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


def _add_convert_parser(commands: argparse._SubParsersAction) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and Path(argv[0]).is_file():  # `diffusion-studio picture.png`, as file managers do
        argv = ["gui", *argv]
    args = _build_parser().parse_args(argv)
    if args.command in (None, "gui"):
        from diffusion_studio.ui.app import run

        return run(getattr(args, "files", []))
    try:
        if args.command == "info":
            return _info(args)
        if args.command in ("train", "train-classifier"):
            return _train(args, argv)
        if args.command == "eval":
            return _evaluate(args)
        if args.command == "convert":
            return _convert(args)
        return _generate(args)
    except OutputExistsError as exc:
        return _fail(f"{exc.path} already exists (use --force to overwrite)")
    except InputError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _info(args: argparse.Namespace) -> int:
    from diffusion_studio.core.model_files import load_model

    model = load_model(args.model, device=args.device)
    rows = [*model.info.summary(), ("Device", str(model.device))]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def _train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import shlex

    from diffusion_studio.core.train.loop import TrainConfig, run_training

    fields = {f for f in TrainConfig.__dataclass_fields__ if f not in ("data", "output")}
    config = TrainConfig(
        data=args.data, output=args.out, **{k: v for k, v in vars(args).items() if k in fields}
    )
    command = shlex.join([PROG, *argv])
    path = run_training(
        config,
        command=command,
        resume=args.resume,
        progress=not args.quiet,
        cpu=args.cpu,
        force=args.force,
    )
    print(path)
    return 0


def _convert(args: argparse.Namespace) -> int:
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


def _numbers(text: str, kind: type, flag: str) -> list:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{flag} takes numbers separated by commas, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values) or len(values) > 100:
        raise InputError(f"{flag} takes 1 to 100 finite numbers separated by commas, got {text!r}")
    return values


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.run import validate
    from diffusion_studio.core.train.evaluate import (
        evaluate_setting,
        evaluation_rows,
        format_table,
        load_eval_classifier,
    )

    if not 1 <= args.n <= MAX_EVAL_SAMPLES:
        raise InputError(f"-n must be from 1 to {MAX_EVAL_SAMPLES:,} samples, got {args.n}")
    model = load_model(args.model, device=args.device)
    if args.compile:
        model.compile()
    classifier, card, real = load_eval_classifier()
    if model.info.class_names != card.class_names:
        raise InputError(
            f"the evaluation classifier knows {', '.join(card.class_names)}; "
            f"{model.info.name} has other classes"
        )
    steps = _numbers(args.steps, int, "--steps")
    etas = _numbers(args.eta, float, "--eta")
    guidances = _numbers(args.guidance, float, "--guidance")
    scales = _numbers(args.classifier_scale, float, "--classifier-scale")
    guide = _classifier(args, model) if any(scales) else None
    if args.batch is not None and args.batch < 1:
        raise InputError("--batch must be at least 1")
    batch = min(args.batch or (32 if model.device.type == "cpu" else 256), args.n)
    grid = [
        (
            name
            + (f" cfg={g:g}" if len(guidances) > 1 else "")
            + (f" cg={c:g}" if len(scales) > 1 or c else ""),
            [
                replace(
                    request,
                    num_inference_steps=s,
                    guidance_scale=g,
                    classifier_scale=c,
                    class_label=0 if c else None,  # each sample's class is set when sampling
                    timestep_spacing=args.spacing,
                    seed=args.seed,
                )
                for s in steps
            ],
        )
        for name, request in evaluation_rows(args.sampler, etas)
        for g in guidances
        for c in scales
    ]
    for _, settings in grid:  # every setting is checked before the first is run
        for setting in settings:
            validate(replace(setting, batch_size=batch), model, classifier=guide)
    guided = f", classifier {guide.name}" if guide else ""
    print(
        f"{model.info.name}: {args.n} samples per setting, guidance {args.guidance}{guided}, "
        f"device {model.device}"
    )
    total = len(grid) * len(steps)
    with tqdm(total=total, unit="setting", desc="eval", disable=args.quiet) as progress:
        table = []
        for name, settings in grid:
            scores = []
            for setting in settings:
                scores.append(
                    evaluate_setting(
                        model, setting, classifier, real, args.n, batch, guide, card.class_counts
                    )
                )
                progress.update()
                if not args.quiet:  # a long table shows each setting as it is done
                    progress.write(
                        f"{name} S={setting.num_inference_steps}: FD "
                        f"{scores[-1].frechet_distance:.3f}, accuracy "
                        f"{scores[-1].class_accuracy:.3f}",
                        file=sys.stderr,
                    )
            table.append((name, scores))
    floor = card.floor_at(args.n)
    print(
        "\nFrechet distance in the classifier's features (lower is better); real-vs-real floor "
        + (f"{floor:.3f} ({args.n} real images against all), " if floor is not None else "")
        + f"{card.real_floor:.3f} (two halves of the data)"
    )
    print(format_table(table, steps, "frechet_distance"))
    print(f"\nClass accuracy (the classifier's held-out accuracy: {card.held_out_accuracy:.3f})")
    print(format_table(table, steps, "class_accuracy"))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.record import check_outputs, write_grid, write_output
    from diffusion_studio.core.run import execute, network_calls, validate

    inpaint = args.command == "inpaint"
    model = load_model(args.model, device=args.device, bf16=args.bf16)
    scales = _numbers(args.classifier_scale, float, "--classifier-scale")
    classifier = _classifier(args, model) if any(scales) else None
    jobs = _jobs(args, model, inpaint, scales, classifier)
    for job in jobs:  # bad settings are reported before anything about files
        validate(job.request, model, inpaint, classifier)
    outputs, grid = _plan(args, jobs)
    check_outputs(
        [o for plan in outputs for o in plan] + ([(grid, "grid", None)] if grid else []), args.force
    )
    for note in jobs[0].notes:  # said once the inputs are known to be good
        print(f"{PROG}: {note}", file=sys.stderr)
    calls = network_calls(jobs[0].request, inpaint)
    results, written = [], []
    with tqdm(total=calls * len(jobs), unit="step", desc=args.command, disable=args.quiet) as bar:
        for job, plan in zip(jobs, outputs):
            result = execute(model, job, on_frame=lambda f: bar.update(), classifier=classifier)
            results.append(result)
            written += [write_output(result, output, overwrite=args.force) for output in plan]
    if grid:  # with --class all, a row per class; with several classifier scales, a column each
        columns = jobs[0].request.batch_size * len(scales) if len(jobs) > 1 else None
        written.append(write_grid(results, grid, columns=columns, overwrite=args.force))
    for path in written:
        print(path)
    return 0


def _classifier(args: argparse.Namespace, model: DiffusionModel) -> Classifier:
    """--classifier, or for the embedded model the classifier shipped to guide it."""
    from diffusion_studio.core.model_files import load_classifier
    from diffusion_studio.core.resources import guidance_classifier_dir

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
) -> list[Job]:
    """The job of the flags, or with --class all one per class (a row each in the grid), and
    with several classifier scales one per scale (the columns). With no --class a
    class-conditional model makes its default class, as the window does; an unconditional
    model guided by a classifier takes the classifier's classes."""
    from diffusion_studio.core.model import find_class
    from diffusion_studio.core.request import default_request
    from diffusion_studio.core.run import Job

    info = model.info
    settings = {
        "sampler": args.sampler,
        "num_inference_steps": args.steps,
        "eta": args.eta,
        "timestep_spacing": args.spacing,
        "variance_type": args.variance,
        "seed": args.seed,
        "batch_size": args.batch,
        "use_clipped_model_output": args.use_clipped_model_output,
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
    elif args.class_ is not None:
        labels = [find_class(names, args.class_)]
    guidance = request.guidance_scale if args.guidance is None else args.guidance
    inputs = {}
    if inpaint:
        inputs = {
            "image": args.image,
            "mask": args.mask,
            "mask_preset": args.mask_preset,
            "mask_seed": args.mask_seed,
            "invert_mask_file": args.invert_mask,
        }
    guide = classifier.info if classifier else None
    return [
        Job.prepare(
            replace(request, class_label=label, guidance_scale=guidance, classifier_scale=scale),
            info,
            classifier=guide,
            **inputs,
        )
        for label in labels
        for scale in scales
    ]


def _plan(args: argparse.Namespace, jobs: list[Job]) -> tuple[list[list], Path | None]:
    """The files of each job (plan_outputs), and the grid's path: decided, and checked, before
    anything runs."""
    from diffusion_studio.core.record import next_run_number, plan_outputs

    grid = Path(args.grid) if args.grid else None
    if grid is not None and grid.suffix.lower() != ".png":
        raise InputError(f"--grid {grid} should end in .png")
    trajectory = Path(args.save_trajectory) if args.save_trajectory else None
    from diffusion_studio.core.export import ANIMATIONS

    if trajectory is not None and trajectory.suffix.lower() not in ANIMATIONS:
        names = " or ".join(ANIMATIONS)
        raise InputError(f"--save-trajectory {trajectory} should end in {names}")
    if trajectory is not None and len(jobs) > 1:
        raise InputError("--save-trajectory follows one class at a time, not --class all")
    if args.out and args.outdir:
        raise InputError("give --out (a file name) or --outdir (a folder), not both")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() != ".png":
        raise InputError(f"--out {out} should end in .png")
    if out is None and (args.outdir or not grid):
        folder = Path(args.outdir or ".")
        first = next_run_number(folder)
        return [
            plan_outputs(job, folder, f"{first + k:05d}", trajectory=trajectory)
            for k, job in enumerate(jobs)
        ], grid
    if out is None:  # only the grid (and the steps)
        return [[(trajectory, "steps", None)] if trajectory else [] for _ in jobs], grid
    plans = []
    for job in jobs:
        stem = out.stem
        if len(jobs) > 1:  # --class all, or several scales: the class and scale in the name
            names = job.model.class_names or (job.classifier.class_names if job.classifier else ())
            if names:
                stem += "-" + _slug(names[job.request.class_label or 0])
            if job.request.classifier_scale:
                stem += f"-cg{job.request.classifier_scale:g}"
        plans.append(
            plan_outputs(
                job, out.parent, stem, single_name=f"{stem}{out.suffix}", trajectory=trajectory
            )
        )
    return plans, grid


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


if __name__ == "__main__":
    sys.exit(main())
