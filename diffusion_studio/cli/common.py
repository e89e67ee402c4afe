"""What the commands share: the program's name, the exit code of bad input, the parser that
says an error in one line, and the number types of flags."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from diffusion_studio.core.errors import InputError

PROG = "diffusion-studio"
EXIT_BAD_INPUT = 2


def number(text: str) -> float:
    """argparse's type for a float flag: finite numbers in ASCII digits only (float() takes
    nan, inf and other scripts' digits, "２" among them)."""
    try:
        value = float(_ascii(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def whole(text: str) -> int:
    """argparse's type for a whole-number flag, in ASCII digits (int() takes "２")."""
    try:
        return int(_ascii(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _ascii(text: str) -> str:
    if not text.isascii():
        raise ValueError(text)
    return text


class Parser(argparse.ArgumentParser):
    """argparse, with an error in one line instead of the usage and the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def numbers(text: str, kind: type, flag: str) -> list:
    """A comma-separated list of 1 to 100 finite numbers (--steps 10,20,50)."""
    try:
        values = [kind(_ascii(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"{flag} takes numbers separated by commas, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values) or len(values) > 100:
        raise InputError(f"{flag} takes 1 to 100 finite numbers separated by commas, got {text!r}")
    return values
