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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from diffusion_studio import __version__
from diffusion_studio.core.errors import InputError, OutputExistsError

if TYPE_CHECKING:
    from torch import Tensor

    from diffusion_studio.core.generate import SampleRequest
    from diffusion_studio.core.model import DiffusionModel

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
    _add_eval_parser(commands)
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
    masks.add_argument(
        "--mask-preset",
        metavar="NAME",
        help="wide, thin, outer, half[-left|-right|-top|-bottom], "
        "every-second-pixel, alternating-lines",
    )
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
    sub.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
    sub.add_argument(
        "--steps", type=int, metavar="N", default=50, help="inference steps (default 50)"
    )
    sub.add_argument(
        "--eta",
        type=_number,
        default=0.0,
        help="DDIM noise: 0 deterministic, 1 like DDPM (default 0)",
    )
    sub.add_argument(
        "--use-clipped-model-output",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="DDIM: re-derive the noise from the clipped x0, as guided-diffusion does (the "
        "default); --no-use-clipped-model-output keeps the network's, as diffusers' "
        "DDIMScheduler does by default",
    )
    sub.add_argument(
        "--spacing",
        choices=("leading", "trailing", "linspace", "quadratic"),
        help="which timesteps the steps visit (default: the model's)",
    )
    sub.add_argument(
        "--variance",
        choices=("fixed_small", "fixed_large"),
        help="DDPM noise variance (default: the model's)",
    )
    sub.add_argument(
        "--seed", type=int, metavar="N", default=0, help="image i of a batch: seed + i"
    )
    sub.add_argument("-n", "--batch", type=int, metavar="N", default=1, help="images (default 1)")
    sub.add_argument(
        "--class",
        dest="class_",
        metavar="NAME|INDEX|all",
        help="the class to generate (class-conditional models); all: -n of each class",
    )
    sub.add_argument(
        "--guidance",
        type=_number,
        metavar="SCALE",
        default=1.0,
        help="classifier-free guidance scale; 1 = off (default 1)",
    )
    sub.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the network")
    sub.add_argument("--out", metavar="PATH", help="PNG file; several images add -0, -1, ...")
    sub.add_argument("--grid", metavar="PATH", help="also write all images as one grid PNG")
    sub.add_argument(
        "--save-trajectory", metavar="PATH", help="the denoising steps as an animated .gif or .webp"
    )
    sub.add_argument("--force", action="store_true", help="overwrite existing files")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    from diffusion_studio.core.train_config import UNET_PRESETS, TrainConfig

    defaults = TrainConfig(data="", output="")
    train = commands.add_parser("train", help="train a model on a folder of images or an .npz")
    train.add_argument(
        "data",
        help="a folder of images (recursive) or an .npz with images, "
        "and optional labels and categories",
    )
    train.add_argument("--out", required=True, metavar="FOLDER", help="the model folder to write")
    train.add_argument(
        "--preset",
        choices=tuple(UNET_PRESETS),
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
        ("--p-uncond", _number, "p_uncond", "probability of dropping the label (guidance)"),
        ("--seed", int, "seed", "seed of the initial weights and of every step's draws"),
        ("--checkpoint-every", int, "checkpoint_every", "steps between checkpoints"),
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
    train.add_argument(
        "--prediction-type", choices=("epsilon", "v_prediction"), default=defaults.prediction_type
    )
    train.add_argument(
        "--beta-schedule", choices=("linear", "cosine"), default=defaults.beta_schedule
    )
    train.add_argument("--hflip", action="store_true", help="random horizontal flips")
    train.add_argument(
        "--checkpoint-dir",
        metavar="FOLDER",
        help="where checkpoints and previews go (default: OUT-checkpoints)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
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
        help="replace an existing --out, if it is a model folder (nothing else is replaced)",
    )
    train.add_argument("--name", help="the model's name (default: the folder's)")
    train.add_argument("--license", default="", help="the licence of the weights")
    train.add_argument("--data-description", default="", help="what the data is, for the card")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="class accuracy and Frechet distance of samplers (DDIM paper, Table 1)"
    )
    evaluate.add_argument("--model", metavar="FOLDER", help="default: the embedded model")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument(
        "--sampler",
        choices=("ddim", "ddpm", "both"),
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
        help="samples per setting, spread over the classes (default 512)",
    )
    evaluate.add_argument(
        "--guidance",
        type=_number,
        default=3.0,
        metavar="SCALE",
        help="classifier-free guidance scale (default 3)",
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
        if args.command == "train":
            return _train(args, argv)
        if args.command == "eval":
            return _evaluate(args)
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

    from diffusion_studio.core.train import TrainConfig, run_training

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

    from diffusion_studio.core.evaluate import (
        evaluate_setting,
        evaluation_rows,
        format_table,
        load_classifier,
    )
    from diffusion_studio.core.generate import validate
    from diffusion_studio.core.model_files import load_model

    if not 1 <= args.n <= MAX_EVAL_SAMPLES:
        raise InputError(f"-n must be from 1 to {MAX_EVAL_SAMPLES:,} samples, got {args.n}")
    model = load_model(args.model, device=args.device)
    if args.compile:
        model.compile()
    classifier, card, real = load_classifier()
    if model.info.class_names != card.class_names:
        raise InputError(
            f"the evaluation classifier knows {', '.join(card.class_names)}; "
            f"{model.info.name} has other classes"
        )
    steps = _numbers(args.steps, int, "--steps")
    etas = _numbers(args.eta, float, "--eta")
    if args.batch is not None and args.batch < 1:
        raise InputError("--batch must be at least 1")
    batch = min(args.batch or (32 if model.device.type == "cpu" else 256), args.n)
    grid = [
        (name, [replace(request, num_inference_steps=s, guidance_scale=args.guidance,
                        timestep_spacing=args.spacing, seed=args.seed) for s in steps])
        for name, request in evaluation_rows(args.sampler, etas)
    ]  # fmt: skip
    for _, settings in grid:  # every setting is checked before the first is run
        for setting in settings:
            validate(replace(setting, batch_size=batch), model)
    print(
        f"{model.info.name}: {args.n} samples per setting, guidance {args.guidance}, "
        f"device {model.device}"
    )
    total = len(grid) * len(steps)
    with tqdm(total=total, unit="setting", desc="eval", disable=args.quiet) as progress:
        table = []
        for name, settings in grid:
            scores = []
            for setting in settings:
                scores.append(evaluate_setting(model, setting, classifier, real, args.n, batch))
                progress.update()
            table.append((name, scores))
    print(
        f"\nFrechet distance in the classifier's features (lower is better); "
        f"real-vs-real floor {card.real_floor:.3f}"
    )
    print(format_table(table, steps, "frechet_distance"))
    print(f"\nClass accuracy (the classifier's held-out accuracy: {card.held_out_accuracy:.3f})")
    print(format_table(table, steps, "class_accuracy"))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diffusion_studio.core.export import MAX_ANIMATION_FRAMES, even_indices
    from diffusion_studio.core.generate import (
        SampleRequest,
        check_resources,
        generate,
        network_calls,
        validate,
    )
    from diffusion_studio.core.images import to_uint8
    from diffusion_studio.core.model_files import load_model

    inpaint = args.command == "inpaint"
    model = load_model(args.model, device=args.device, bf16=args.bf16)
    request = SampleRequest(
        sampler=args.sampler,
        num_inference_steps=args.steps,
        eta=args.eta,
        timestep_spacing=args.spacing,
        variance_type=args.variance,
        seed=args.seed,
        batch_size=args.batch,
        guidance_scale=args.guidance,
        jump_length=args.jump_length if inpaint else 10,
        jump_n_sample=args.jump_n_sample if inpaint else 10,
        use_clipped_model_output=args.use_clipped_model_output,
    )
    requests = _requests_per_class(request, model, args.class_)
    for each in requests:
        validate(each, model, inpaint)  # bad settings are reported before anything about files
    outputs = _Outputs.plan(args, requests, model)
    if outputs.trajectory:  # the kept frames, x_t and x0 of the batch each
        check_resources(request, model, inpaint, frames_kept=2 * MAX_ANIMATION_FRAMES)
    source = inpaint_mask = None
    if inpaint:
        source, inpaint_mask = _inpaint_inputs(args, model)
    calls = network_calls(request, inpaint)
    # only the frames the animation keeps are converted and held
    kept = set(even_indices(calls)) if outputs.trajectory else set()
    frames, images = [], []
    with tqdm(
        total=calls * len(requests), unit="step", desc=args.command, disable=args.quiet
    ) as progress:
        for each in requests:
            for step in generate(model, each, source, inpaint_mask):
                if step.index in kept:
                    frames.append(_trajectory_frame(step.x_t, step.x0_pred))
                progress.update()
            images.append(to_uint8(step.x_t))
    for path in outputs.write(model, requests, np.concatenate(images), frames, inpaint=inpaint):
        print(path)
    return 0


def _requests_per_class(
    request: SampleRequest, model: DiffusionModel, class_: str | None
) -> list[SampleRequest]:
    """One request, or with --class all one per class (a row each in the grid)."""
    if class_ is None:
        return [request]
    if class_.strip().lower() != "all":
        return [replace(request, class_label=model.class_index(class_))]
    if not model.info.class_names:
        raise InputError(f"{model.info.name} is not class-conditional; leave --class out")
    return [replace(request, class_label=c) for c in range(len(model.info.class_names))]


def _inpaint_inputs(args: argparse.Namespace, model: DiffusionModel) -> tuple[Tensor, Tensor]:
    """The source image and the inpaint mask, both fitted to the model's size."""
    from diffusion_studio.core.images import fit_to_size, load_image, to_tensor
    from diffusion_studio.core.masks import (
        fit_mask,
        invert_mask,
        load_mask,
        mask_to_tensor,
        parse_preset,
        preset_mask,
    )

    size = model.info.resolution
    image = load_image(args.image, channels=model.info.in_channels)
    original_size = (image.height, image.width)
    fitted, note = fit_to_size(image, size)
    if args.mask:
        mask = load_mask(args.mask, invert=args.invert_mask)
        if mask.shape not in (original_size, size):
            raise InputError(
                f"the mask {args.mask} is {mask.shape[1]}x{mask.shape[0]}, but the image is "
                f"{original_size[1]}x{original_size[0]}: they must be the same size"
            )
        mask = fit_mask(mask, size)
    else:
        preset, side = parse_preset(args.mask_preset)
        seed = args.mask_seed if args.mask_seed is not None else args.seed
        mask = preset_mask(preset, size, seed=seed, side=side)
        if args.invert_mask:
            mask = invert_mask(mask)
    if note:  # said once the inputs are known to be good
        print(f"{PROG}: {note}", file=sys.stderr)
    return to_tensor(fitted), mask_to_tensor(mask)


def _trajectory_frame(x_t: Tensor, x0_pred: Tensor) -> np.ndarray:
    """One animation frame: the batch's x_t above its predicted x_0."""
    from diffusion_studio.core.export import make_grid
    from diffusion_studio.core.images import to_uint8

    return np.concatenate([make_grid(to_uint8(x_t)), make_grid(to_uint8(x0_pred))], axis=0)


@dataclass(frozen=True)
class _Outputs:
    """The files a job writes, decided (and checked for overwriting) before it runs."""

    images: tuple[Path, ...]
    grid: Path | None
    trajectory: Path | None
    overwrite: bool

    @classmethod
    def plan(
        cls, args: argparse.Namespace, requests: list[SampleRequest], model: DiffusionModel
    ) -> _Outputs:
        from diffusion_studio.core.files import check_file_target

        out = Path(args.out) if args.out else None
        if out is None and not args.grid:
            out = Path(f"{args.command}-{args.seed}.png")
        images: list[Path] = []
        if out is not None:
            if out.suffix.lower() != ".png":
                raise InputError(f"--out {out} should end in .png")
            for request in requests:
                name = out.stem
                if len(requests) > 1:  # --class all: the class in the name
                    name += "-" + _slug(model.info.class_names[request.class_label or 0])
                if request.batch_size == 1:
                    images.append(out.with_name(name + out.suffix))
                else:
                    images += [
                        out.with_name(f"{name}-{i}{out.suffix}") for i in range(request.batch_size)
                    ]
        grid = Path(args.grid) if args.grid else None
        if grid is not None and grid.suffix.lower() != ".png":
            raise InputError(f"--grid {grid} should end in .png")
        trajectory = Path(args.save_trajectory) if args.save_trajectory else None
        if trajectory is not None and trajectory.suffix.lower() not in (".gif", ".webp"):
            raise InputError(f"--save-trajectory {trajectory} should end in .gif or .webp")
        if trajectory is not None and len(requests) > 1:
            raise InputError("--save-trajectory follows one class at a time, not --class all")
        plan = cls(tuple(images), grid, trajectory, args.force)
        for path in plan.paths():  # before the run: a refusal costs no work
            check_file_target(path, overwrite=args.force)
        return plan

    def paths(self) -> list[Path]:
        return [*self.images, *(p for p in (self.grid, self.trajectory) if p is not None)]

    def write(
        self,
        model: DiffusionModel,
        requests: list[SampleRequest],
        images: np.ndarray,
        frames: list[np.ndarray],
        *,
        inpaint: bool,
    ) -> list[Path]:
        from diffusion_studio.core.export import make_grid, save_animation, save_png
        from diffusion_studio.core.generate import export_metadata

        alone = [r.for_image(i) for r in requests for i in range(r.batch_size)]
        sheets = list(zip(self.images, alone, images))
        if self.grid is not None:  # with --class all, a row per class
            columns = requests[0].batch_size if len(requests) > 1 else None
            sheets.append((self.grid, requests[0], make_grid(images, columns=columns)))
        written = []
        for path, settings, image in sheets:
            metadata, parameters = export_metadata(settings, model, inpaint)
            if path == self.grid and len(requests) > 1:
                metadata["requests"] = [r.to_dict() for r in requests]
            written.append(
                save_png(
                    path, image, metadata=metadata, parameters=parameters, overwrite=self.overwrite
                )
            )
        if self.trajectory is not None:
            written.append(save_animation(self.trajectory, frames, overwrite=self.overwrite))
        return written


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


if __name__ == "__main__":
    sys.exit(main())
