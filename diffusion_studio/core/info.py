"""What the studio knows of a model and a classifier without loading either, or torch: the
ModelInfo a model panel, a job and a record carry, the ClassifierInfo of a guiding classifier,
and finding a class by name. The window draws itself from these alone (core.model and
core.classifier hold the networks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from diffusion_studio.core.errors import InputError

Layout = Literal["flat", "pipeline"]


@dataclass(frozen=True)
class ModelInfo:
    """What a person wants to know about a model, shown by `info` and the model panel."""

    name: str
    path: str
    layout: Layout
    resolution: tuple[int, int]
    in_channels: int
    out_channels: int
    parameters: int
    prediction_type: str
    beta_schedule: str
    num_train_timesteps: int
    variance_type: str
    timestep_spacing: str = "leading"  # the schedule's default
    class_names: tuple[str, ...] = ()
    null_class: int | None = None
    default_class: int = 0  # the class the window opens on
    description: str = ""
    license: str = ""
    data: str = ""
    weights_hash: str = ""  # SHA-256 of the weights file ("" for a network made in memory)
    # what a request that leaves its precision open runs in: the loaded network's device's
    precision: str = "float32"

    @property
    def short_hash(self) -> str:
        """The first 10 characters of the weights' SHA-256, as A1111 shows a model's hash."""
        return self.weights_hash[:10]

    @property
    def conditional(self) -> bool:
        return bool(self.class_names)

    @property
    def learns_variance(self) -> bool:
        """The network outputs its variance too (IDDPM's learn_sigma): 2C channels."""
        return self.out_channels == 2 * self.in_channels

    def summary(self) -> list[tuple[str, str]]:
        """(label, value) rows, in reading order."""
        height, width = self.resolution
        rows = [
            ("Model", self.name + (f" [{self.short_hash}]" if self.weights_hash else "")),
            ("Folder", f"{self.path} ({self.layout} layout)"),
            ("Resolution", f"{width}x{height}, {self.in_channels} channels"),
            ("Parameters", f"{self.parameters / 1e6:.2f} M"),
            ("Prediction", self.prediction_type),
            ("Schedule", f"{self.beta_schedule}, T = {self.num_train_timesteps}"),
            (
                "Variance",
                self.variance_type + (" (the network learns it)" if self.learns_variance else ""),
            ),
        ]
        if self.class_names:
            guidance = "yes" if self.null_class is not None else "no (no null class)"
            rows.append(("Classes", ", ".join(self.class_names)))
            rows.append(("Classifier-free guidance", guidance))
        rows += [(k, v) for k, v in (("Data", self.data), ("Licence", self.license)) if v]
        return rows


def find_class(names: Sequence[str], name_or_index: str | int) -> int:
    """The index of a class given by name (case-insensitive) or index, among `names`."""
    text = str(name_or_index).strip()
    if isinstance(name_or_index, int) or (text.isascii() and text.isdigit()):
        index = int(name_or_index)
        if 0 <= index < len(names):
            return index
        raise InputError(f"class index {index} is out of range 0..{len(names) - 1}")
    wanted = str(name_or_index).strip().casefold()
    for index, name in enumerate(names):
        if name.casefold() == wanted:
            return index
    raise InputError(f"unknown class {name_or_index!r}; the classes are: {', '.join(names)}")


@dataclass(frozen=True)
class ClassifierInfo:
    """A classifier's identity, which a Job and a record carry (not the live network)."""

    name: str
    path: str
    resolution: int
    in_channels: int
    class_names: tuple[str, ...]
    weights_hash: str = ""
