"""Safe image loading, fitting to the model size, and the one tensor <-> uint8 conversion.

Tensors are NCHW float32 in [-1, 1]; images in the UI and in files are uint8 (H, W, 3) RGB,
or (H, W, 1) for a one-channel model. Nothing else in the project converts between the two.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import (  # the plugins of IMAGE_FORMATS, registered with Image.open by import
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from diffusion_studio.core.errors import InputError

if TYPE_CHECKING:  # torch is imported where a tensor is made, so reading images stays light
    import torch

IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
"""The only formats Pillow may open here, by the file's content, whatever its name. None of
them hands the file to another program (Pillow's EPS, PS and PDF support runs Ghostscript).
JPEG includes the MPO files of many cameras, which Pillow opens with the JPEG plugin."""

MAX_IMAGE_PIXELS: int = 4096 * 4096
"""Largest image (width * height) load_image accepts; bigger files are refused unread."""

# What Pillow raises for a file it recognises but cannot decode (truncated, corrupt chunks,
# tiles outside the image). OSError covers UnidentifiedImageError and "image file is truncated".
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error)

CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def load_image(
    path: str | os.PathLike[str], *, channels: int = 3, background: int = 255
) -> Image.Image:
    """Load an image file safely as mode "RGB" (channels=3), "L" (1) or "RGBA" (4), decoded.

    Only IMAGE_FORMATS are opened, recognised by the content. EXIF orientation is applied
    first; for 1 and 3 channels transparency is composited onto the grey level
    `background` (white for pictures; masks use black, "not painted"); 16-bit and 32-bit
    images are scaled (not clipped) to 8 bit; animated files give their first frame.
    Raises InputError naming the file for a missing, unreadable, truncated or too large image.
    """
    path = Path(path)
    if channels not in CHANNEL_MODES:
        raise InputError(
            f"cannot load {path} for a {channels}-channel model: "
            "only 1-channel (grey), 3-channel (RGB) and 4-channel (RGBA) models are supported"
        )
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file; check the path")
    try:
        # Our limit is far below Pillow's global one, so the size check below is what
        # refuses most bombs. Pillow warns above its own limit and raises above twice it;
        # the warning is turned into an error here only, not in the global filters.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                _check_size(path, im.size)
                im.seek(0)  # first frame of an animation
                image = ImageOps.exif_transpose(im)  # loads the pixels; a new, detached image
    except InputError:  # from _check_size; it is a ValueError, so let it pass unwrapped
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise InputError(_too_large_message(path, None)) from e
    except Image.UnidentifiedImageError as e:
        raise InputError(
            f"{path} is not an image the studio opens (by its content, whatever its name); "
            "use a PNG, JPEG, WebP, BMP, GIF or TIFF"
        ) from e
    except _DECODE_ERRORS as e:
        raise InputError(f"{path} could not be read (is it truncated or corrupt?): {e}") from e
    try:
        return _to_8bit(image, channels, background)
    except ValueError as e:  # a mode Pillow cannot convert
        raise InputError(f"{path} has colour mode {image.mode}, which cannot be converted") from e


def to_channels(array: np.ndarray, channels: int, background: int = 255) -> np.ndarray:
    """An (H, W, C) uint8 image with `channels` channels (1, 3 or 4), converted as load_image
    converts a file: grey to colour, colour to grey, alpha composited or added."""
    if array.shape[-1] == channels:
        return array
    converted = np.asarray(_to_8bit(to_pil(array), channels, background))
    return converted[..., None] if converted.ndim == 2 else converted


def _check_size(path: Path, size: tuple[int, int]) -> None:
    """Refuse an image whose declared size is over MAX_IMAGE_PIXELS, before decoding it."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(_too_large_message(path, size))


def _too_large_message(path: Path, size: tuple[int, int] | None) -> str:
    declared = f" ({size[0]}x{size[1]})" if size else ""
    side = int(MAX_IMAGE_PIXELS**0.5)
    return (
        f"{path} is too large{declared}: images up to {MAX_IMAGE_PIXELS:,} pixels "
        f"({side}x{side}) are accepted; shrink it in an image editor first"
    )


def _to_8bit(image: Image.Image, channels: int, background: int) -> Image.Image:
    """Convert any Pillow mode to "RGB", "L" or "RGBA" the way a person expects to see it."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        image = Image.fromarray(_scale_to_uint8(np.asarray(image)))  # 2-D uint8: mode "L"
    elif mode == "La":
        image = image.convert("LA")  # premultiplied; Pillow converts it to LA only
    elif mode == "P" and not image.has_transparency_data:
        image = image.convert("RGB")

    if channels == 4:
        return image.convert("RGBA")  # alpha is data for an RGBA model: kept, not composited
    if image.mode in _ALPHA_MODES or image.has_transparency_data:
        grey = image.mode in _GREY_MODES
        image = _composite(image.convert("LA" if grey else "RGBA"), background)

    target = CHANNEL_MODES[channels]
    if image.mode != target:
        image = image.convert(target)  # 1 -> L, CMYK/YCbCr/LAB/HSV -> RGB, grey <-> colour
    return image


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map 16-bit, 32-bit integer or float pixel values to uint8 without clipping highlights.

    Pillow's own convert("L") clips I;16 values, so 40000 would become 255 instead of 156.
    """
    if values.dtype.kind in "ui" and values.min(initial=0) >= 0 and values.max(initial=0) < 2**16:
        # 16-bit data (also 16-bit PNGs and TIFFs that Pillow opens as "I"): keep the top byte.
        return (values.astype(np.uint32) >> 8).astype(np.uint8)
    is_float = values.dtype.kind == "f"
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if is_float and low >= 0.0 and high <= 1.0:
        values = values * 255.0  # float images are conventionally in [0, 1]
    elif low < 0.0 or high > 255.0:
        # No fixed range is known (signed 32-bit, HDR floats): stretch what is there.
        values = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _composite(image: Image.Image, background: int) -> Image.Image:
    """Composite an "LA" or "RGBA" image onto a grey level; the colour under alpha 0 never shows."""
    pixels = np.asarray(image).astype(np.uint32)
    colour, alpha = pixels[..., :-1], pixels[..., -1:]
    # Exact integer blend: c * a + b * (1 - a), with a in 0..255 and rounding to nearest.
    blended = (colour * alpha + background * (255 - alpha) + 127) // 255
    blended = blended.astype(np.uint8)
    return Image.fromarray(blended[..., 0] if image.mode == "LA" else blended)


def centre_crop_box(
    source_size: tuple[int, int], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The centred crop (left, top, right, bottom) of a (height, width) source that has the
    aspect ratio of `size` (height, width); fit_to_size and masks.fit_mask share it."""
    (src_h, src_w), (height, width) = source_size, size
    crop_w, crop_h = src_w, src_h
    if src_w * height > src_h * width:
        crop_w = max(1, round(src_h * width / height))
    else:
        crop_h = max(1, round(src_w * height / width))
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def fit_to_size(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, str | None]:
    """Centre-crop `image` to the aspect ratio of `size` (height, width), then resize to it.

    Returns (image, note). The note is None when the image already had the size (the same
    image is returned, pixels untouched); otherwise one sentence for a person, with sizes
    written width x height, e.g. "640x480 image centre-cropped to 480x480 and resized to 32x32".
    Shrinking uses Lanczos, enlarging bicubic.
    """
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got (height, width) = {size}")
    src_w, src_h = image.size
    if (src_w, src_h) == (width, height):
        return image, None

    left, top, right, bottom = centre_crop_box((src_h, src_w), size)
    crop_w, crop_h = right - left, bottom - top
    steps = []
    if (crop_w, crop_h) != (src_w, src_h):
        image = image.crop((left, top, left + crop_w, top + crop_h))
        steps.append(f"centre-cropped to {crop_w}x{crop_h}")
    if (crop_w, crop_h) != (width, height):
        shrinking = crop_w * crop_h > width * height
        resample = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
        image = image.resize((width, height), resample)
        steps.append(f"resized to {width}x{height}")
    return image, f"{src_w}x{src_h} image " + " and ".join(steps)


def to_tensor(
    image: Image.Image | np.ndarray, device: torch.device | str | None = None
) -> torch.Tensor:
    """Turn a uint8 image into a model input: x = u / 127.5 - 1.

    Accepts a PIL image in mode "L", "RGB" or "RGBA", or a uint8 array (H, W) or (H, W, C).
    Returns (1, C, H, W) float32 in [-1, 1] on `device` (default: CPU).
    """
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB", "RGBA"):
            raise ValueError(
                f"to_tensor takes L, RGB or RGBA images, got {image.mode}; load files with "
                "load_image"
            )
        image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"expected a uint8 (H, W) or (H, W, C) array, got {image.dtype} {image.shape}"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    import torch

    if not image.flags.writeable:  # np.asarray(PIL image) is read-only; torch warns on those
        image = image.copy()
    u = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    # Move the uint8 data first: a quarter of the bytes of float32 cross the bus.
    return u.to(device=device).to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Turn model output into uint8 pixels: round((x + 1) * 127.5), clamped to 0..255.

    Takes (N, C, H, W) or (C, H, W) in [-1, 1], any device and dtype (bf16 on CUDA too);
    returns (N, H, W, C) or (H, W, C) uint8 on the CPU. NaN becomes mid grey.
    """
    import torch

    if x.ndim not in (3, 4):
        raise ValueError(f"expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    u = torch.nan_to_num(x.detach().to(torch.float32), nan=0.0)
    # Quantise on the device so only uint8 crosses to the CPU.
    u = ((u + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    u = u.movedim(-3, -1).contiguous().cpu()
    return u.numpy()


def to_pil(array: np.ndarray) -> Image.Image:
    """Wrap a uint8 image array as PIL: (H, W, 3) -> "RGB", (H, W, 4) -> "RGBA",
    (H, W, 1) or (H, W) -> "L"."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"expected (H, W, 3), (H, W, 4), (H, W, 1) or (H, W), got {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))  # 2-D: "L", 3: "RGB", 4: "RGBA"


def to_rgb(array: np.ndarray, background: int = 255) -> np.ndarray:
    """Any (H, W, C) or (N, H, W, C) uint8 image as RGB for a screen or a GIF: grey is
    repeated, RGBA composited onto the grey level `background`, RGB returned as it is."""
    channels = array.shape[-1]
    if channels == 3:
        return array
    if channels == 1:
        return np.repeat(array, 3, axis=-1)
    if channels != 4:
        raise ValueError(f"expected 1, 3 or 4 channels, got {array.shape}")
    colour, alpha = array[..., :3].astype(np.uint32), array[..., 3:].astype(np.uint32)
    return ((colour * alpha + background * (255 - alpha) + 127) // 255).astype(np.uint8)
