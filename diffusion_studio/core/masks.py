"""Inpainting masks: RePaint's preset kinds, LaMa-style random strokes, and mask files.

This module is the one place that knows the mask convention: an `inpaint_mask` is an (H, W)
bool array, True (1, white 255 in files) = pixels to generate, False (0, black) = known
pixels kept from the source image. RePaint and diffusers' RePaintPipeline use the opposite
(1 = keep); such masks come in and go out only through an explicit `invert=True`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

import numpy as np
from PIL import Image, ImageDraw

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import atomic_write
from diffusion_studio.core.images import centre_crop_box, load_image

if TYPE_CHECKING:
    import torch

MaskPreset = Literal["wide", "thin", "outer", "half", "every-second-pixel", "alternating-lines"]
HalfSide = Literal["left", "right", "top", "bottom"]
HALF_SIDES: tuple[str, ...] = get_args(HalfSide)


@dataclass(frozen=True)
class PresetSpec:
    """One preset of the table: its label for a person, whether it is drawn from a seed (and
    can be re-rolled), and whether it takes a side."""

    label: str
    random: bool = False
    sided: bool = False


# The RePaint paper's mask kinds (Sec. 5.3); the panel, the menus and the CLI list this table.
PRESETS: dict[str, PresetSpec] = {
    "wide": PresetSpec("Wide strokes", random=True),
    "thin": PresetSpec("Thin strokes", random=True),
    "outer": PresetSpec("Outer (keep the centre)"),
    "half": PresetSpec("Half", sided=True),
    "every-second-pixel": PresetSpec("Every second pixel (2x SR)"),
    "alternating-lines": PresetSpec("Alternating lines"),
}
MASK_PRESETS: tuple[str, ...] = tuple(PRESETS)

# Other names people bring with them: short ones, and RePaint's mask folder names.
_ALIASES: dict[str, str] = {
    "sr2": "every-second-pixel",
    "nn2": "every-second-pixel",
    "lines": "alternating-lines",
    "ev2li": "alternating-lines",
    "thick": "wide",
    "expand": "outer",
    "genhalf": "half",
}

# LaMa's generators are defined for 256x256 images; every length below is in those pixels.
_LAMA_SIZE = 256
_MAX_TAMPER_AREA = 0.5
_MIN_RANDOM_SIDE = 8  # below this a never-empty mask under 50% is mostly luck
_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class _StrokeConfig:
    """LaMa's make_random_irregular_mask settings, plus the box probability of its mixture."""

    min_strokes: int
    max_strokes: int
    max_width: int
    max_len: int
    max_angle: int
    box_proba: float


# LaMa configs/data_gen/random_thick_256.yaml and random_thin_256.yaml.
_WIDE = _StrokeConfig(
    min_strokes=1, max_strokes=5, max_width=100, max_len=200, max_angle=4, box_proba=0.3
)
_THIN = _StrokeConfig(
    min_strokes=4, max_strokes=50, max_width=10, max_len=40, max_angle=4, box_proba=0.0
)
_BOX_MARGIN, _BOX_MIN, _BOX_MAX, _BOX_MAX_COUNT = 10, 30, 150, 3


def preset_mask(
    preset: str, size: tuple[int, int], *, seed: int = 0, side: str = "right"
) -> np.ndarray:
    """A preset inpainting mask: RePaint's mask kinds (Lugmayr et al. 2022, Sec. 5.3).

    Returns (H, W) bool for `size` = (height, width), True = generate. "wide" and "thin" are
    LaMa's random_thick/random_thin strokes (Suvorov et al. 2022) scaled from 256 pixels to
    the shorter side, a pure function of (size, seed), never empty and at most half the
    image. "outer" keeps a centre crop a quarter of each side (RePaint's ex64), "half"
    generates `side` (floor(n / 2) rows or columns, so an odd middle line stays known),
    "every-second-pixel" keeps the stride-2 grid (nn2), "alternating-lines" keeps the even
    rows (ev2li).
    """
    height, width = _check_size(size)
    if preset not in MASK_PRESETS:
        raise InputError(
            f"unknown mask preset {preset!r}; choose one of: {', '.join(MASK_PRESETS)}"
        )
    if side not in HALF_SIDES:
        raise InputError(f"unknown half side {side!r}; choose one of: {', '.join(HALF_SIDES)}")
    if PRESETS[preset].random:
        return _random_mask(_WIDE if preset == "wide" else _THIN, height, width, seed)

    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    if preset == "outer":
        keep_h, keep_w = max(1, height // 4), max(1, width // 4)
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        mask = np.ones((height, width), dtype=bool)
        mask[top : top + keep_h, left : left + keep_w] = False
        return mask
    if preset == "half":
        if side == "left":
            return np.broadcast_to(cols < width // 2, (height, width)).copy()
        if side == "right":
            return np.broadcast_to(cols >= width - width // 2, (height, width)).copy()
        if side == "top":
            return np.broadcast_to(rows < height // 2, (height, width)).copy()
        return np.broadcast_to(rows >= height - height // 2, (height, width)).copy()
    if preset == "every-second-pixel":
        return ~((rows % 2 == 0) & (cols % 2 == 0))
    return np.broadcast_to(rows % 2 == 1, (height, width)).copy()


def parse_preset(name: str) -> tuple[MaskPreset, HalfSide]:
    """Read a preset name as a person types it: returns (preset, side) for preset_mask.

    Case and "_" or spaces for "-" do not matter; "half-left" etc. carry the side ("half"
    alone is "right", as RePaint's genhalf keeps the left); "sr2"/"nn2" and "lines"/"ev2li"
    are the super-resolution and line presets, "thick" is wide, "expand" is outer.
    """
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    side = "right"
    if key.startswith("half-") and key[len("half-") :] in HALF_SIDES:
        key, side = "half", key[len("half-") :]
    key = _ALIASES.get(key, key)
    if key not in MASK_PRESETS:
        choices = [*MASK_PRESETS, *(f"half-{s}" for s in HALF_SIDES), *_ALIASES]
        raise InputError(f"unknown mask preset {name!r}; choose one of: {', '.join(choices)}")
    return cast(MaskPreset, key), cast(HalfSide, side)


def invert_mask(mask: np.ndarray) -> np.ndarray:
    """Swap generate and keep: (H, W) bool, nonzero input counts as True."""
    return ~_as_bool_mask(mask)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to `size` = (height, width); (H, W) bool, stays binary."""
    mask = _as_bool_mask(mask)
    height, width = _check_size(size)
    # Sample at pixel centres, as PIL's NEAREST does, in integers so no rounding can flip a
    # line: output i reads input floor((i + 1/2) * old / new).
    src_rows = (2 * np.arange(height) + 1) * mask.shape[0] // (2 * height)
    src_cols = (2 * np.arange(width) + 1) * mask.shape[1] // (2 * width)
    return mask[np.ix_(src_rows, src_cols)]


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit a mask to `size` = (height, width) as images.fit_to_size fits its image.

    The same centre crop to the target aspect ratio, then a nearest-neighbour resize, so
    mask and image stay aligned pixel for pixel; (H, W) bool, stays binary.
    """
    mask = _as_bool_mask(mask)
    height, width = _check_size(size)
    left, top, right, bottom = centre_crop_box(mask.shape, (height, width))
    return resize_mask(mask[top:bottom, left:right], (height, width))


def load_mask(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None, *, invert: bool = False
) -> np.ndarray:
    """Read a mask image: (H, W) bool, white (luminance >= 128) = generate.

    Transparency means "not painted": the image is composited over black first, so a fully
    transparent image is all keep (all generate with invert=True), whatever colour its
    hidden pixels hold. `invert=True` reads RePaint-style masks (white = keep). With `size`
    = (height, width) the mask is resized with nearest neighbour. A mask of one value is
    allowed.
    """
    gray = load_image(path, channels=1, background=0)
    mask = np.asarray(gray) >= 128
    if invert:
        mask = ~mask
    if size is not None and _check_size(size) != mask.shape:
        mask = resize_mask(mask, size)
    return mask


def save_mask(
    mask: np.ndarray, path: str | os.PathLike[str], *, invert: bool = False, overwrite: bool = False
) -> Path:
    """Write a mask as an 8-bit grayscale PNG: 255 = generate, 0 = keep (swapped if `invert`).

    `invert=True` writes RePaint's files (255 = keep). The write is atomic; an existing file
    raises OutputExistsError unless `overwrite`. Returns the path written.
    """
    mask = _as_bool_mask(mask)
    path = Path(path)
    if path.suffix.lower() != ".png":
        # JPEG and friends would smear a binary mask; a PNG under another name misleads.
        raise InputError(f"mask file {path} must end in .png; masks are saved as PNG")
    if invert:
        mask = ~mask
    image = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    return atomic_write(path, lambda f: image.save(f, format="PNG"), overwrite=overwrite)


def mask_to_tensor(mask: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """The mask as the samplers take it: (1, 1, H, W) float32, 1.0 = generate, 0.0 = keep.

    Accepts bool, 0/1 or 0/255 arrays; any nonzero value counts as generate.
    """
    import torch

    mask = _as_bool_mask(mask)
    return torch.from_numpy(mask.astype(np.float32))[None, None].to(device)


def mask_coverage(mask: np.ndarray) -> float:
    """Share of pixels to generate, 0.0 (all kept) to 1.0 (all generated)."""
    mask = _as_bool_mask(mask)
    return float(np.count_nonzero(mask)) / mask.size


def _as_bool_mask(mask: np.ndarray) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"a mask must be 2-D (height, width); got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"a mask must have at least one pixel; got shape {array.shape}")
    return array != 0


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"mask size must be (height, width); got {size!r}") from None
    if height < 1 or width < 1:
        raise InputError(f"mask size must be positive; got (height, width) = {size!r}")
    return height, width


def _random_mask(config: _StrokeConfig, height: int, width: int, seed: int) -> np.ndarray:
    if min(height, width) < _MIN_RANDOM_SIDE:
        raise InputError(
            f"random masks need at least {_MIN_RANDOM_SIDE}x{_MIN_RANDOM_SIDE} pixels; "
            f"got {height}x{width}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"mask seed must be a whole number >= 0; got {seed!r}")
    rng = np.random.default_rng(int(seed))
    # LaMa's dataset script redraws masks that tamper too much; the next draw comes from the
    # same generator, so the result stays a pure function of (size, seed).
    for _ in range(_MAX_ATTEMPTS):
        mask = _draw_lama(rng, config, height, width)
        if 0.0 < mask.mean() <= _MAX_TAMPER_AREA:
            return mask
    raise RuntimeError(f"no {height}x{width} random mask under 50% in {_MAX_ATTEMPTS} draws")


def _draw_lama(
    rng: np.random.Generator, config: _StrokeConfig, height: int, width: int
) -> np.ndarray:
    """One draw of LaMa's MixedMaskGenerator (irregular strokes, boxes with box_proba)."""
    scale = min(height, width) / _LAMA_SIZE
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in range(rng.integers(config.min_strokes, config.max_strokes + 1)):
        x, y = float(rng.integers(width)), float(rng.integers(height))
        for _ in range(1 + rng.integers(5)):
            # LaMa's make_random_irregular_mask: whole-radian angles, mirrored on even strokes,
            # and its +10 / +5 floors on length and brush width.
            angle = 0.01 + rng.integers(config.max_angle)
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + rng.integers(config.max_len)) * scale
            brush = max(1, round((5 + rng.integers(config.max_width)) * scale))
            end_x = min(max(x + length * math.sin(angle), 0.0), float(width))
            end_y = min(max(y + length * math.cos(angle), 0.0), float(height))
            draw.line([(x, y), (end_x, end_y)], fill=255, width=brush)
            # cv2.line draws thick lines with round caps; round joints keep strokes connected.
            radius = brush / 2
            for cx, cy in ((x, y), (end_x, end_y)):
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
            x, y = end_x, end_y
    if config.box_proba > 0 and rng.random() < config.box_proba:
        _draw_boxes(rng, draw, height, width, scale)
    return np.asarray(canvas) > 0


def _draw_boxes(
    rng: np.random.Generator, draw: ImageDraw.ImageDraw, height: int, width: int, scale: float
) -> None:
    """LaMa's make_random_rectangle_mask: 1-3 boxes inside a margin."""
    margin = round(_BOX_MARGIN * scale)
    lo = max(1, round(_BOX_MIN * scale))
    hi = min(round(_BOX_MAX * scale), height - 2 * margin, width - 2 * margin)
    hi = max(hi, lo + 1)  # small images: keep the range non-empty
    for _ in range(rng.integers(1, _BOX_MAX_COUNT + 1)):
        box_w, box_h = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        left = int(rng.integers(margin, max(margin + 1, width - margin - box_w + 1)))
        top = int(rng.integers(margin, max(margin + 1, height - margin - box_h + 1)))
        draw.rectangle([left, top, left + box_w - 1, top + box_h - 1], fill=255)
