"""The geometry of a growing picture: growths (a side extended by a fraction of the model's
size, or a zoom-out), a canvas and its known pixels, the windows of the model's size that
cover it, and a picture fitted whole to the model's scale. core/outpaint.py fills the
canvases; Job.upscale's tiled enlargement uses the windows too."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import load_image, to_channels, to_pil
from diffusion_studio.core.info import ModelInfo
from diffusion_studio.core.limits import MAX_RESOLUTION

SIDES = ("left", "right", "top", "bottom")
MAX_EXTEND = 4.0  # a side grows by at most 4 model sizes in one growth
MAX_ZOOM = 8.0


@dataclass(frozen=True)
class Growth:
    """One growth of the canvas: "extend" a side by `amount` of the model's size along it
    (0 < amount <= MAX_EXTEND), or "zoom_out" by `amount` (1 < amount <= MAX_ZOOM: the
    picture shrunk by it into the centre of a canvas of the same size). With MultiDiffusion an
    extension `joined` to the extension before it is denoised in the same run."""

    kind: Literal["extend", "zoom_out"]
    amount: float
    side: str = ""
    joined: bool = False  # MultiDiffusion: filled in one run with the extension before it

    def check(self) -> None:
        if self.kind == "extend":
            if self.side not in SIDES:
                raise InputError(f"a side is {', '.join(SIDES)}; got {self.side!r}")
            if not 0 < self.amount <= MAX_EXTEND:
                raise InputError(f"a side extends by more than 0 and at most {MAX_EXTEND:g} "
                                 f"model sizes, got {self.amount:g}")  # fmt: skip
        elif self.kind == "zoom_out":
            if not 1 < self.amount <= MAX_ZOOM:
                raise InputError(f"zoom out by more than 1 and at most {MAX_ZOOM:g}, "
                                 f"got {self.amount:g}")  # fmt: skip
        else:
            raise InputError(f"a growth is extend or zoom_out, got {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "extend":
            return f"{self.side} +{self.amount:g}"
        return f"zoom out {self.amount:g}x"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def joined(growths: tuple[Growth, ...]) -> tuple[Growth, ...]:
    """The growths with every extension that follows an extension joined to it (one
    MultiDiffusion run over the whole strip they add)."""
    return tuple(
        dataclasses.replace(g, joined=k > 0 and g.kind == growths[k - 1].kind == "extend")
        for k, g in enumerate(growths)
    )


def parse_extend(text: str) -> Growth:
    """SIDE:FRACTION ("right:0.5") as a growth; InputError saying the form otherwise."""
    side, _, amount = text.partition(":")
    side = side.strip().lower()
    try:
        value = float(amount) if amount.strip().isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if side not in SIDES or not np.isfinite(value):
        raise InputError(
            f"--extend takes SIDE:FRACTION, the side one of {', '.join(SIDES)} and the "
            f"fraction of the model's size (right:0.5), got {text!r}"
        )
    growth = Growth("extend", value, side)
    growth.check()
    return growth


@dataclass(frozen=True, eq=False)
class Canvas:
    """An image (H, W, C) uint8 and which of its pixels are known (H, W) bool."""

    image: np.ndarray
    known: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def grown(self, growth: Growth, model_size: tuple[int, int]) -> Canvas:
        """The canvas after `growth`: larger, its new pixels unknown (zero), or its picture
        shrunk into the centre."""
        height, width = self.size
        if growth.kind == "zoom_out":
            small = (max(1, round(height / growth.amount)), max(1, round(width / growth.amount)))
            picture = to_pil(self.image).resize(small[::-1], Image.Resampling.LANCZOS)
            top, left = (height - small[0]) // 2, (width - small[1]) // 2
            image = np.zeros_like(self.image)
            shrunk = np.asarray(picture).reshape(*small, self.image.shape[2])
            image[top : top + small[0], left : left + small[1]] = shrunk
            known = np.zeros_like(self.known)
            known[top : top + small[0], left : left + small[1]] = True
            return Canvas(image, known)
        new_size = grown_size(self.size, growth, model_size)
        first = growth.side in ("left", "top")  # the new pixels before the old ones
        pad = [(n, 0) if first else (0, n) for n in (new_size[0] - height, new_size[1] - width)]
        image = np.pad(self.image, [*pad, (0, 0)])
        return Canvas(image, np.pad(self.known, pad, constant_values=False))

    def windows(self, model_size: tuple[int, int], stride: int) -> list[tuple[int, int]]:
        """The windows of tile_windows that hold an unknown pixel."""
        h, w = model_size
        return [(t, c) for t, c in tile_windows(self.size, model_size, stride)
                if not self.known[t : t + h, c : c + w].all()]  # fmt: skip

    def crop(self, window: tuple[int, int], model_size: tuple[int, int]) -> Canvas:
        (top, left), (h, w) = window, model_size
        return Canvas(self.image[top : top + h, left : left + w],
                      self.known[top : top + h, left : left + w])  # fmt: skip

    def pasted(self, window: tuple[int, int], image: np.ndarray) -> Canvas:
        """The canvas with the unknown pixels under `window` taken from `image` (the window's
        size), and known from now on; the known ones stay as they are, exactly."""
        top, left = window
        h, w = image.shape[:2]
        place = (slice(top, top + h), slice(left, left + w))
        canvas_image, known = self.image.copy(), self.known.copy()
        fresh = ~known[place]
        canvas_image[place][fresh] = image[fresh]
        known[place] = True
        return Canvas(canvas_image, known)


def tile_windows(
    size: tuple[int, int], model_size: tuple[int, int], stride: int
) -> list[tuple[int, int]]:
    """The windows (top, left) of the model's size that cover a canvas of `size` on a grid
    of 1/`stride` of the model's size, each side's last flush with the canvas's edge."""
    tops = _positions(size[0], model_size[0], model_size[0] // stride)
    lefts = _positions(size[1], model_size[1], model_size[1] // stride)
    return [(t, c) for t in tops for c in lefts]


def _positions(length: int, window: int, step: int) -> list[int]:
    last = length - window
    return sorted({*range(0, last, max(1, step)), last})


def grown_size(
    size: tuple[int, int], growth: Growth, model_size: tuple[int, int]
) -> tuple[int, int]:
    """The (height, width) of a canvas of `size` after `growth`; InputError past
    MAX_RESOLUTION a side."""
    if growth.kind == "zoom_out":
        return size
    axis = 1 if growth.side in ("left", "right") else 0
    grown = list(size)
    grown[axis] += max(1, round(growth.amount * model_size[axis]))
    if max(grown) > MAX_RESOLUTION:
        raise InputError(f"the canvas would be {grown[1]}x{grown[0]}; the studio makes "
                         f"at most {MAX_RESOLUTION} pixels a side")  # fmt: skip
    return grown[0], grown[1]


def fit_picture(
    image: str | Path | np.ndarray, model: ModelInfo, shrink: bool = True
) -> tuple[np.ndarray, str | None]:
    """The starting picture at the model's scale, whole: resized (aspect kept, never
    cropped) so that it covers the model's size with one side equal to it; a picture that
    already covers it with one side equal (a canvas grown before) stays as it is, and without
    `shrink` so does any picture that covers it. Returns (H, W, C) uint8 in the model's
    channels and a note when it was resized."""
    height, width = model.resolution
    if isinstance(image, np.ndarray):
        picture = np.asarray(to_pil(to_channels(image, model.in_channels)))
    else:
        picture = np.asarray(load_image(image, channels=model.in_channels))
    picture = picture.reshape(picture.shape[0], picture.shape[1], model.in_channels)
    h, w = picture.shape[:2]
    scale = max(height / h, width / w)
    if not shrink:
        scale = max(scale, 1.0)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    if size == (h, w):
        return picture, None
    if max(size) > MAX_RESOLUTION:
        raise InputError(f"the picture is {w}x{h}: at the model's scale it would be "
                         f"{size[1]}x{size[0]}, over {MAX_RESOLUTION} a side")  # fmt: skip
    resized = to_pil(picture).resize(size[::-1], Image.Resampling.LANCZOS)
    note = f"the picture was resized from {w}x{h} to {size[1]}x{size[0]}, the model's scale"
    return np.asarray(resized).reshape(*size, model.in_channels), note


def check_windows(
    windows: tuple[tuple[int, int], ...],
    size: tuple[int, int],
    model_size: tuple[int, int],
    generated: np.ndarray | None = None,
) -> None:
    """InputError unless the windows (top, left) of the model's size lie on a canvas of
    `size` and cover every pixel it generates (`generated` (H, W) bool; default all)."""
    covered = np.zeros(size, bool)
    (height, width), (h, w) = size, model_size
    for top, left in windows:
        if not (0 <= top <= height - h and 0 <= left <= width - w):
            raise InputError(f"a window at ({top}, {left}) is off the {width}x{height} canvas")
        covered[top : top + h, left : left + w] = True
    if not covered[generated if generated is not None else ...].all():
        raise InputError(f"the windows leave pixels of the {width}x{height} canvas uncovered")
