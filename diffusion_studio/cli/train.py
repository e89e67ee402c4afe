"""`train` and `train-classifier`: Algorithm 1 on a person's images, or the noise-aware
classifier of classifier guidance, with the same data, checkpoints and resume."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from diffusion_studio.cli.common import PROG, number, whole


def add_parsers(commands: argparse._SubParsersAction) -> None:
    _add_parser(commands)
    _add_parser(commands, "classifier")


def _add_parser(commands: argparse._SubParsersAction, task: str = "diffusion") -> None:
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
        ("--resolution", whole, "resolution", "image size in pixels"),
        ("--steps", whole, "steps", "optimizer steps in all"),
        ("--batch-size", whole, "batch_size", "images per step (over all GPUs)"),
        ("--lr", number, "learning_rate", "AdamW learning rate"),
        ("--warmup", whole, "warmup_steps", "steps of linear learning-rate warm-up"),
        ("--ema-decay", number, "ema_decay", "EMA decay of the weights that are saved"),
        ("--seed", whole, "seed", "seed of the initial weights and of every step's draws"),
        ("--checkpoint-every", whole, "checkpoint_every", "steps between checkpoints"),
    ]
    if classifier:
        options += [
            ("--sample-every", whole, "sample_every", "steps between held-out accuracy checks"),
            ("--holdout", number, "holdout", "share of the images kept out, for the accuracy"),
        ]
    else:
        options += [
            ("--p-uncond", number, "p_uncond", "probability of dropping the label (guidance)"),
            ("--sample-every", whole, "sample_every", "steps between preview grids"),
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


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
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
