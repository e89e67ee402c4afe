"""The project's error types for input a person can fix."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input from a person (a file, a flag, a field): the message says what to change."""


class OutputExistsError(InputError):
    """A write would replace a file that already exists, and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; choose another name or allow overwriting")
        self.path = path
