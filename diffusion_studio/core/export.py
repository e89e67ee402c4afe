"""Writing results: atomic file writes, PNG with the request as metadata, grids, trajectories."""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import atomic_write
from diffusion_studio.core.images import MAX_IMAGE_PIXELS, to_pil, to_rgb

# --- PNG with the request as metadata -------------------------------------------------------

METADATA_KEY = "diffusion-studio"
"""PNG text chunk holding the request as JSON, read back by read_png_metadata."""

PARAMETERS_KEY = "parameters"
"""PNG text chunk with A1111-style settings text, which other tools show."""

ATTACHMENT_PREFIX = "diffusion-studio-"
"""Compressed text chunks ATTACHMENT_PREFIX + name + "-" + i carry a file (an inpainting's
source and mask, as PNG) in base64, in pieces under Pillow's 1 MB limit on one text chunk."""
ATTACHMENT_PIECE = 512 * 1024
MAX_ATTACHMENT_BYTES = 32 * 1024 * 1024


def save_png(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    metadata: Mapping[str, Any] | None = None,
    parameters: str | None = None,
    attachments: Mapping[str, bytes] | None = None,
    upscale: int = 1,
    overwrite: bool = False,
) -> Path:
    """Save a uint8 (H, W, 3), (H, W, 4), (H, W, 1) or (H, W) image as PNG, atomically.

    `metadata` is stored as sorted JSON under METADATA_KEY and `parameters` as plain text
    under PARAMETERS_KEY; each goes in a tEXt chunk when ASCII, else in an iTXt (UTF-8) one.
    `attachments` (name -> bytes) go in compressed chunks (see ATTACHMENT_PREFIX).
    `upscale` is a whole factor >= 1 applied with nearest neighbour, so pixels stay sharp.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: a PNG export needs a name ending in .png")
    if isinstance(upscale, bool) or not isinstance(upscale, int | np.integer) or upscale < 1:
        raise InputError(f"upscale must be a whole number 1 or more, got {upscale!r}")
    if upscale > 1:
        image = np.repeat(np.repeat(image, upscale, axis=0), upscale, axis=1)
    picture = to_pil(image)
    info = PngInfo()
    if metadata is not None:
        # allow_nan=False: a NaN or an infinity never reaches a file (it would not be JSON)
        text = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, allow_nan=False)
        _add_text(info, METADATA_KEY, text)
    if parameters is not None:
        _add_text(info, PARAMETERS_KEY, parameters)
    for name, data in (attachments or {}).items():
        text = base64.b64encode(data).decode("ascii")
        for i in range(0, max(len(text), 1), ATTACHMENT_PIECE):
            key = f"{ATTACHMENT_PREFIX}{name}-{i // ATTACHMENT_PIECE}"
            info.add_text(key, text[i : i + ATTACHMENT_PIECE], zip=True)
    return atomic_write(
        path, lambda f: picture.save(f, format="PNG", pnginfo=info), overwrite=overwrite
    )


def _add_text(info: PngInfo, key: str, text: str) -> None:
    # tEXt is Latin-1 by the PNG spec and many readers assume ASCII; iTXt is UTF-8.
    if text.isascii():
        info.add_text(key, text)
    else:
        info.add_itxt(key, text)


def read_png_texts(path: str | os.PathLike[str]) -> dict[str, str]:
    """The studio's text chunks of a PNG (METADATA_KEY and the attachments), read without
    running anything but Pillow's PNG reader; InputError for a file that is not a readable PNG."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file; check the path")
    try:
        with Image.open(path, formats=["PNG"]) as im:
            texts = dict(im.info)  # chunks before the pixel data, read without decoding
            if METADATA_KEY not in texts and im.width * im.height <= MAX_IMAGE_PIXELS:
                texts.update(im.text)  # decodes, to reach chunks after the pixels
    except Image.UnidentifiedImageError as e:
        raise InputError(
            f"{path} is not a PNG file, so it holds no Diffusion Studio settings"
        ) from e
    except Image.DecompressionBombError as e:
        raise InputError(f"{path} declares an image too large to read safely") from e
    except (OSError, SyntaxError, EOFError, ValueError, struct.error) as e:
        raise InputError(f"{path} could not be read (is it truncated or corrupt?): {e}") from e
    return {
        str(k): str(v)
        for k, v in texts.items()
        if isinstance(k, str)
        and isinstance(v, str)
        and (k == METADATA_KEY or k.startswith(ATTACHMENT_PREFIX))
    }


def read_attachment(texts: Mapping[str, str], name: str) -> bytes | None:
    """The file attached under `name` (save_png's attachments), or None; InputError if its
    pieces are damaged or it is larger than MAX_ATTACHMENT_BYTES."""
    prefix = f"{ATTACHMENT_PREFIX}{name}-"
    pieces = {k[len(prefix) :]: v for k, v in texts.items() if k.startswith(prefix)}
    if not pieces:
        return None
    if set(pieces) != {str(i) for i in range(len(pieces))}:
        raise InputError(f"the attached {name} is damaged (pieces missing)")
    text = "".join(pieces[str(i)] for i in range(len(pieces)))
    if len(text) * 3 // 4 > MAX_ATTACHMENT_BYTES:
        raise InputError(f"the attached {name} is larger than {MAX_ATTACHMENT_BYTES // 2**20} MB")
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as e:
        raise InputError(f"the attached {name} is damaged (not base64)") from e


def read_png_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read back the JSON that save_png stored under METADATA_KEY; None if the PNG has none."""
    text = read_png_texts(path).get(METADATA_KEY)
    if text is None:
        return None
    try:
        return parse_metadata(text)
    except InputError as exc:
        raise InputError(
            f"the Diffusion Studio settings in {path} are unreadable ({exc})"
        ) from None


def parse_metadata(text: str) -> dict[str, Any]:
    """The JSON object of a record, checked for size, nesting and NaN before it is used."""
    if len(text) > MAX_METADATA_CHARS:
        raise InputError(f"over {MAX_METADATA_CHARS:,} characters; the studio writes a few hundred")
    try:
        metadata = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else f"not valid JSON: {e}"
        raise InputError(reason) from None
    if not isinstance(metadata, dict):
        raise InputError(f"a JSON {type(metadata).__name__}, not an object")
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise InputError("nested too deeply")
    return metadata


MAX_METADATA_CHARS = 100_000
MAX_METADATA_DEPTH = 4  # {"requests": [{"seed": 1}]} is 3 deep


def _refuse_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --- Grids and animations ---------------------------------------------------------------------


def make_grid(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    columns: int | None = None,
    padding: int = 2,
    background: int = 255,
) -> np.ndarray:
    """Tile N uint8 images (N, H, W, C) row by row into one (rows*H + pads, cols*W + pads, C).

    `padding` pixels of `background` go between cells only, not around the edge, so one
    image gives itself (a copy). `columns` defaults to ceil(sqrt(N)) and is capped at N;
    unused cells of the last row are background.
    """
    batch = np.asarray(images) if isinstance(images, np.ndarray) else _stack(images)
    if batch.ndim != 4 or batch.shape[0] == 0 or batch.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, H, W, C) with N >= 1, got {batch.shape}")
    if columns is not None and columns < 1:
        raise InputError(f"a grid needs at least 1 column, got {columns}")
    if padding < 0:
        raise InputError(f"grid padding cannot be negative, got {padding}")
    if not 0 <= background <= 255:
        raise InputError(f"grid background must be a grey level 0..255, got {background}")
    count, height, width, depth = batch.shape
    cols = min(columns or math.ceil(math.sqrt(count)), count)
    rows = math.ceil(count / cols)
    grid = np.full(
        (rows * height + (rows - 1) * padding, cols * width + (cols - 1) * padding, depth),
        background,
        dtype=np.uint8,
    )
    for index, cell in enumerate(batch):
        row, col = divmod(index, cols)
        top, left = row * (height + padding), col * (width + padding)
        grid[top : top + height, left : left + width] = cell
    return grid


LABEL_SIZE = 13  # points of the labels' font (Pillow's own, offline)
MIN_CELL = 96  # small images are enlarged (nearest) to about this, so the labels fit beside


def labelled_grid(
    images: np.ndarray,
    columns: int,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    notes: Sequence[str] = (),
) -> np.ndarray:
    """A grid of uint8 images (N, H, W, C), `columns` to a row, with its rows named on the
    left, its columns above and each image's note (if any) under it, in a white margin; RGB.
    Images under MIN_CELL pixels are enlarged by a whole factor, nearest neighbour, so a pixel
    stays a pixel."""
    from PIL import ImageDraw, ImageFont

    count, height, width = images.shape[:3]
    factor = max(1, -(-MIN_CELL // max(height, width)))
    cells = np.repeat(np.repeat(to_rgb(images), factor, axis=1), factor, axis=2)
    font = ImageFont.load_default(size=LABEL_SIZE)
    line = LABEL_SIZE + 6
    rows = -(-count // columns)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width_of(text: str) -> int:
        return int(measure.textlength(text, font=font))

    left = 8 + max([0, *(width_of(t) for t in row_labels)]) + 8 * bool(row_labels)
    top = line + 4 if column_labels else 4
    under = line if any(notes) else 0
    cell_h, cell_w, gap = cells.shape[1], cells.shape[2], 6
    canvas = Image.new(
        "RGB",
        (left + columns * (cell_w + gap) + 4, top + rows * (cell_h + under + gap) + 4),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    for c, text in enumerate(column_labels[:columns]):
        x = left + c * (cell_w + gap) + (cell_w - width_of(text)) // 2
        draw.text((max(left, x), 4), text, fill="black", font=font)
    for k in range(count):
        r, c = divmod(k, columns)
        x, y = left + c * (cell_w + gap), top + r * (cell_h + under + gap)
        canvas.paste(Image.fromarray(cells[k]), (x, y))
        if k < len(notes) and notes[k]:
            draw.text((x, y + cell_h + 3), notes[k], fill=(60, 60, 60), font=font)
    for r, text in enumerate(row_labels[:rows]):
        y = top + r * (cell_h + under + gap) + (cell_h - LABEL_SIZE) // 2
        draw.text((8, y), text, fill="black", font=font)
    return np.asarray(canvas)


def _stack(images: Sequence[np.ndarray]) -> np.ndarray:
    shapes = {np.shape(image) for image in images}
    if len(shapes) > 1:
        raise ValueError(f"grid images must all have one size, got {sorted(shapes)}")
    return np.stack(images) if images else np.empty((0, 0, 0, 0), np.uint8)


LAST_FRAME_MS = 1000
"""How long an animation holds its last frame, so a viewer sees the result."""

GIF_MIN_FRAME_MS = 20
"""Browsers play GIF delays under 20 ms as 100 ms, so shorter frames would play slower."""


ANIMATIONS = {".gif": "animated GIF", ".webp": "animated WebP (lossless)"}
"""The animation formats of the steps, by suffix, with a label for a person."""

MAX_ANIMATION_FRAMES = 120
"""Frames an animation keeps by default: enough to follow a run, small enough to share."""


def save_animation(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray],
    *,
    duration_ms: int = 60,
    max_frames: int = MAX_ANIMATION_FRAMES,
    overwrite: bool = False,
) -> Path:
    """Save uint8 frames (H, W, C) as a looping animated GIF or lossless WebP, by the suffix.

    More than `max_frames` frames are thinned evenly, always keeping the first and the
    last; the last is held LAST_FRAME_MS. GIF frames last at least GIF_MIN_FRAME_MS.
    Encoding 50 frames of 256x256 takes about a second: call it from a worker, not the GUI.
    """
    path = Path(path)
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        names = " or ".join(ANIMATIONS)
        raise InputError(f"{path}: animations are saved as {names}; use one of those names")
    if len(frames) == 0:
        raise ValueError("no frames to save")
    if duration_ms < 1:
        raise InputError(f"frame duration must be at least 1 ms, got {duration_ms}")
    if max_frames < 2:
        raise InputError(f"an animation keeps at least 2 frames (first, last), got {max_frames}")
    shapes = {np.shape(frame) for frame in frames}
    if len(shapes) > 1:
        raise InputError(f"{path}: all frames must have one size, got {sorted(shapes)}")

    kept = [frames[i] for i in even_indices(len(frames), max_frames)]
    if fmt == "GIF":  # GIF's transparency is all or nothing: RGBA frames go onto white
        pictures = [to_pil(frame if frame.shape[-1] != 4 else to_rgb(frame)) for frame in kept]
    else:
        pictures = [to_pil(frame) for frame in kept]
    if fmt == "GIF":
        duration_ms = max(duration_ms, GIF_MIN_FRAME_MS)
        # Pillow's default palette for RGB frames (median cut) costs ~0.4 s per 256x256
        # frame; fast octree takes ~2 ms and keeps gradients at least as well.
        pictures = [
            p.quantize(256, method=Image.Quantize.FASTOCTREE) if p.mode == "RGB" else p
            for p in pictures
        ]
        options: dict[str, Any] = {}
    else:
        # WebP has no grey mode; its alpha keeps an RGBA model's transparency
        pictures = [p if p.mode == "RGBA" else p.convert("RGB") for p in pictures]
        # Lossless "quality" is effort; on trajectories 25/1 was 3x faster than 50/3 and no bigger.
        options = {"lossless": True, "quality": 25, "method": 1}
    durations = [duration_ms] * (len(pictures) - 1) + [max(duration_ms, LAST_FRAME_MS)]

    def write(f: BinaryIO) -> None:
        pictures[0].save(
            f,
            format=fmt,
            save_all=True,
            append_images=pictures[1:],
            duration=durations,
            loop=0,  # forever
            **options,
        )

    return atomic_write(path, write, overwrite=overwrite)


def even_indices(count: int, limit: int = MAX_ANIMATION_FRAMES) -> list[int]:
    """`min(count, limit)` indices spread evenly over range(count), first and last included."""
    if count <= limit:
        return list(range(count))
    # Integer rounding of i * (count - 1) / (limit - 1): strictly increasing, ends at count - 1.
    return [(i * (count - 1) + (limit - 1) // 2) // (limit - 1) for i in range(limit)]
