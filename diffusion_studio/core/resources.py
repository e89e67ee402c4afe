"""Where the files that ship with the studio live (the default model, sample images)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def resources_dir() -> Path:
    """The shipped resources: inside the installed package, or the source tree's resources/."""
    packaged = _PACKAGE / "resources"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "resources"


def default_model_dir() -> Path:
    """The folder of the embedded default model (it may not exist yet)."""
    return resources_dir() / "default-model"


def guidance_classifier_dir() -> Path:
    """The noise-aware classifier that guides the default model (it may not exist yet); not
    resources/classifier, the evaluation's own, so that the guide never grades itself."""
    return resources_dir() / "guidance-classifier"


def readme_path() -> Path:
    """The README: in the installed package's resources (the wheel carries a copy), or at the
    top of the source tree."""
    packaged = resources_dir() / "README.md"
    return packaged if packaged.is_file() else resources_dir().parent / "README.md"


def sample_images() -> list[Path]:
    """The sample source images shipped for inpainting, sorted by name."""
    folder = resources_dir() / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
