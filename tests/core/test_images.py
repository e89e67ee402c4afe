"""Image loading, fitting and the tensor <-> uint8 conversion, as a person would notice them."""

from __future__ import annotations

import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import (
    MAX_IMAGE_PIXELS,
    fit_to_size,
    load_image,
    to_pil,
    to_rgb,
    to_tensor,
    to_uint8,
)

# --- tensor <-> uint8 ---------------------------------------------------------------------------


def test_every_uint8_value_survives_the_round_trip() -> None:
    u = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([u, u[::-1], u.T], axis=-1)
    assert np.array_equal(to_uint8(to_tensor(rgb))[0], rgb)
    assert np.array_equal(to_uint8(to_tensor(u))[0, :, :, 0], u)


def test_to_tensor_shape_dtype_and_range() -> None:
    image = np.zeros((5, 7, 3), dtype=np.uint8)
    image[0, 0] = 255
    x = to_tensor(image)
    assert x.shape == (1, 3, 5, 7)
    assert x.dtype == torch.float32
    assert x.min().item() == -1.0
    assert x.max().item() == 1.0
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_to_tensor_takes_pil_images_and_grey_arrays() -> None:
    assert to_tensor(Image.new("RGB", (4, 3), (255, 0, 0))).shape == (1, 3, 3, 4)
    assert to_tensor(Image.new("L", (4, 3))).shape == (1, 1, 3, 4)
    assert to_tensor(np.zeros((3, 4), np.uint8)).shape == (1, 1, 3, 4)
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((3, 4), np.float32))
    assert to_tensor(Image.new("RGBA", (4, 3))).shape == (1, 4, 3, 4)
    with pytest.raises(ValueError, match="RGBA"):
        to_tensor(Image.new("CMYK", (4, 3)))


def test_to_uint8_keeps_batch_and_single_layouts() -> None:
    x = torch.linspace(-1, 1, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    batch = to_uint8(x)
    assert batch.shape == (2, 4, 5, 3)
    assert batch.dtype == np.uint8
    single = to_uint8(x[1])
    assert single.shape == (4, 5, 3)
    assert np.array_equal(single, batch[1])
    assert batch[0, 0, 0, 0] == 0
    assert batch[1, 3, 4, 2] == 255


def test_to_uint8_clamps_and_handles_nan() -> None:
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5, float("nan")]).reshape(1, 1, 6)
    assert to_uint8(x)[0, :, 0].tolist() == [0, 0, 128, 255, 255, 128]


def test_to_uint8_accepts_bfloat16() -> None:
    u = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    x = to_tensor(u).to(torch.bfloat16)
    out = to_uint8(x)[0]
    assert out.dtype == np.uint8
    # bf16 keeps 8 significant bits, so values near +-1 may move by one level, no more.
    assert np.abs(out.astype(int) - u.astype(int)).max() <= 1
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_to_pil_modes() -> None:
    assert to_pil(np.zeros((2, 3, 3), np.uint8)).mode == "RGB"
    grey = to_pil(np.full((2, 3, 1), 7, np.uint8))
    assert grey.mode == "L" and grey.size == (3, 2) and grey.getpixel((0, 0)) == 7
    assert to_pil(np.zeros((2, 3), np.uint8)).mode == "L"
    assert to_pil(np.zeros((2, 3, 4), np.uint8)).mode == "RGBA"
    with pytest.raises(ValueError):
        to_pil(np.zeros((2, 3, 2), np.uint8))


def test_to_rgb_composites_alpha_over_white_and_repeats_grey() -> None:
    rgba = np.array([[[200, 0, 0, 255], [200, 0, 0, 0], [0, 0, 0, 128]]], np.uint8)
    assert to_rgb(rgba).tolist() == [[[200, 0, 0], [255, 255, 255], [127, 127, 127]]]
    assert to_rgb(np.full((1, 2, 1), 9, np.uint8)).tolist() == [[[9, 9, 9], [9, 9, 9]]]
    rgb = np.zeros((1, 1, 3), np.uint8)
    assert to_rgb(rgb) is rgb


# --- load_image ---------------------------------------------------------------------------------


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def test_rgb_png_loads_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(source).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), source)
    grey = load_image(tmp_path / "a.png", channels=1)
    assert grey.mode == "L" and grey.size == (9, 6)


def test_palette_transparency_becomes_white(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 255, 0, 10, 20, 30])  # index 0: hidden green, index 1: dark
    image.putpixel((1, 1), 1)
    image.save(tmp_path / "p.png", transparency=0)
    loaded = _pixels(load_image(tmp_path / "p.png"))
    assert loaded[0, 0].tolist() == [255, 255, 255]
    assert loaded[1, 1].tolist() == [10, 20, 30]


def test_hidden_colour_under_alpha_zero_never_shows(tmp_path: Path) -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 255, 0))  # magenta, fully transparent
    image.putpixel((0, 0), (0, 0, 0, 128))
    image.putpixel((1, 0), (0, 0, 200, 255))
    image.save(tmp_path / "rgba.png")
    loaded = _pixels(load_image(tmp_path / "rgba.png"))
    assert loaded[3, 3].tolist() == [255, 255, 255]
    assert loaded[0, 0].tolist() == [127, 127, 127]  # half black over white
    assert loaded[0, 1].tolist() == [0, 0, 200]


def test_grey_with_alpha_composites_onto_white(tmp_path: Path) -> None:
    image = Image.new("LA", (3, 3), (0, 0))
    image.putpixel((2, 2), (40, 255))
    image.save(tmp_path / "la.png")
    grey = load_image(tmp_path / "la.png", channels=1)
    assert grey.mode == "L"
    assert _pixels(grey)[0, 0] == 255
    assert _pixels(grey)[2, 2] == 40
    assert _pixels(load_image(tmp_path / "la.png"))[2, 2].tolist() == [40, 40, 40]


def test_16_bit_values_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 40000], [65535, 256]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    image.save(tmp_path / "deep.png")
    loaded = _pixels(load_image(tmp_path / "deep.png"))
    assert loaded[..., 0].tolist() == [[0, 156], [255, 1]]


def test_float_image_in_unit_range_is_scaled(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)).save(tmp_path / "f.tif")
    loaded = _pixels(load_image(tmp_path / "f.tif", channels=1))
    assert loaded.tolist() == [[0, 128], [255, 64]]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.mode == "RGB"
    r, g, b = _pixels(loaded)[8, 8]
    assert r > 240 and g < 15 and b < 15


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.size == (20, 40)
    pixels = _pixels(loaded)
    assert pixels[5, 10, 0] > 200 and pixels[5, 10, 2] < 50  # stored left is now the top
    assert pixels[35, 10, 2] > 200 and pixels[35, 10, 0] < 50


def test_jpeg_loads(tmp_path: Path) -> None:
    Image.new("RGB", (12, 10), (30, 120, 200)).save(tmp_path / "a.jpeg")
    loaded = load_image(tmp_path / "a.jpeg")
    assert loaded.mode == "RGB" and loaded.size == (12, 10)
    assert np.abs(_pixels(loaded)[5, 5] - [30, 120, 200]).max() <= 3


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r, _, b = _pixels(load_image(tmp_path / "anim.gif"))[4, 4]
    assert r > 240 and b < 15


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.png"):
        load_image(tmp_path / "nowhere.png")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_text("hello, I am not a picture\n")
    with pytest.raises(InputError, match=r"x\.png.*not an image"):
        load_image(path)


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"t\.png"):
        load_image(tmp_path / "t.png")


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height (the IHDR is patched, CRC fixed)."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("width", "height"),
    [(5000, 5000), (10000, 10000), (20000, 20000)],
    ids=["over-our-limit", "pillow-warns", "pillow-refuses"],
)
def test_huge_image_is_refused_before_decoding(tmp_path: Path, width: int, height: int) -> None:
    assert width * height > MAX_IMAGE_PIXELS
    path = _png_declaring(tmp_path / "bomb.png", width, height)
    filters_before = list(warnings.filters)
    limit_before = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"^\S*bomb\.png is too large"):
            load_image(path)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert time.perf_counter() - start < 1.0  # decoding 25+ megapixels would take longer
    assert list(warnings.filters) == filters_before
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_bad_channel_count_is_refused(tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="4-channel"):
        load_image(tmp_path / "a.png", channels=2)


def test_rgba_is_kept_for_a_four_channel_model(tmp_path: Path) -> None:
    Image.new("RGBA", (2, 2), (10, 20, 30, 40)).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png", channels=4)
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (10, 20, 30, 40)
    Image.new("RGB", (2, 2), (10, 20, 30)).save(tmp_path / "b.jpg")
    assert load_image(tmp_path / "b.jpg", channels=4).getpixel((1, 1))[3] == 255


# --- fit_to_size --------------------------------------------------------------------------------


def test_wide_image_is_centre_cropped_then_resized() -> None:
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, :8] = pixels[:, 56:] = (255, 0, 0)  # the 8 columns each side the crop removes
    pixels[:, 8:56] = (0, 0, 255)
    fitted, note = fit_to_size(Image.fromarray(pixels), (32, 32))
    assert fitted.size == (32, 32)
    assert note == "64x48 image centre-cropped to 48x48 and resized to 32x32"
    out = _pixels(fitted)
    assert out[..., 0].max() <= 1 and out[..., 2].min() >= 254  # no red left at the edges


def test_image_of_the_right_size_is_untouched() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    fitted, note = fit_to_size(Image.fromarray(pixels), (32, 32))
    assert note is None
    assert np.array_equal(np.asarray(fitted), pixels)


def test_non_square_target_is_height_then_width() -> None:
    fitted, note = fit_to_size(Image.new("RGB", (64, 64)), (16, 32))
    assert fitted.size == (32, 16)
    assert note == "64x64 image centre-cropped to 64x32 and resized to 32x16"


def test_small_image_is_enlarged_without_crop() -> None:
    fitted, note = fit_to_size(Image.new("L", (8, 8), 90), (32, 32))
    assert fitted.size == (32, 32) and fitted.mode == "L"
    assert note == "8x8 image resized to 32x32"
    assert _pixels(fitted).min() == _pixels(fitted).max() == 90


def test_crop_alone_when_one_side_already_fits() -> None:
    fitted, note = fit_to_size(Image.new("RGB", (40, 32)), (32, 32))
    assert fitted.size == (32, 32)
    assert note == "40x32 image centre-cropped to 32x32"
