"""`diffusion-studio`: the window with no command; headless jobs as subcommands.

    diffusion-studio [FILE ...]           open the studio (with images, or PNGs it exported)
    diffusion-studio sample  [options]    generate images
    diffusion-studio inpaint [options]    regenerate the masked part of an image (RePaint)
    diffusion-studio info    [--model]    describe a model
    diffusion-studio upscale | colorize | outpaint --image PATH [options]   the other tasks
    diffusion-studio compare [options]    a table of settings from one noise
    diffusion-studio fork PARENT.png --at-step K [options]   continue a run from a step
    diffusion-studio train | train-classifier | eval | convert   (see --help)

Each command is a module here: its parser and its run. Bad input gives one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from diffusion_studio import __version__
from diffusion_studio.cli import convert, evaluate, generate, restore, train, workflows
from diffusion_studio.cli.common import EXIT_BAD_INPUT, PROG, Parser
from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.shards import launched_processes

MODULES = (generate, restore, workflows, train, evaluate, convert)
"""The command modules, each with add_parsers(commands) for its parsers."""

Run = Callable[[argparse.Namespace, list[str]], int]
COMMANDS: dict[str, Run] = {  # a command: what runs it (with the arguments as given)
    "sample": lambda args, argv: generate.generate(args),
    "inpaint": lambda args, argv: generate.generate(args),
    "upscale": lambda args, argv: generate.generate(args),
    "colorize": lambda args, argv: generate.generate(args),
    "outpaint": lambda args, argv: restore.run_outpaint(args),
    "info": lambda args, argv: generate.info(args),
    "compare": lambda args, argv: workflows.run_compare(args),
    "fork": lambda args, argv: workflows.run_fork(args),
    "train": train.run,
    "train-classifier": train.run,
    "eval": lambda args, argv: evaluate.run(args),
    "convert": lambda args, argv: convert.run(args),
}
SPREAD = ("sample", "inpaint", "upscale", "colorize", "eval", "train", "train-classifier")
"""The commands that share their work among the processes of `accelerate launch`."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="A studio for pixel-space diffusion models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    gui = commands.add_parser("gui", help="open the studio window (the default)")
    gui.add_argument("files", nargs="*", metavar="FILE", help="images, or PNGs it exported")
    for module in MODULES:
        module.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and Path(argv[0]).is_file():  # `diffusion-studio picture.png`, as file managers do
        argv = ["gui", *argv]
    args = build_parser().parse_args(argv)
    if args.command in (None, "gui"):
        return _open_window(getattr(args, "files", []))
    try:
        spread = launched_processes()
        if spread > 1 and args.command not in SPREAD:
            raise InputError(
                f"{args.command} runs in one process, not {spread}; a launcher spreads "
                + ", ".join(SPREAD)
            )
        return COMMANDS[args.command](args, argv)
    except OutputExistsError as exc:
        return _fail(f"{exc.path} already exists (use --force to overwrite)")
    except InputError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _open_window(files: Sequence[str]) -> int:
    """The window, once it is known to be able to open here (a display, Qt's libraries);
    else one line saying what to install, never Qt's abort."""
    from diffusion_studio.ui.display import import_problem, window_problem

    problem = window_problem()
    if problem:
        return _fail(problem)
    try:
        from diffusion_studio.ui.app import run
    except ImportError as exc:
        return _fail(import_problem(exc))
    return run(files)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
