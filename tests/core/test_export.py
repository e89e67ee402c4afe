"""Exports: PNG with settings, grids and animations, written atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from PIL import Image, ImageSequence
from PIL.PngImagePlugin import PngInfo

from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.export import (
    METADATA_KEY,
    PARAMETERS_KEY,
    atomic_write,
    make_grid,
    read_png_metadata,
    save_animation,
    save_png,
)


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- PNG --------------------------------------------------------------------------------------


def test_metadata_round_trip_with_unicode(tmp_path: Path) -> None:
    metadata = {
        "sampler": "ddim",
        "eta": 0.0,
        "num_inference_steps": 50,
        "prompt_class": "chat 🐱 café",
        "nested": {"mask": [1, 0, 1], "seed": 12345678901, "none": None},
    }
    image = _noise((8, 6, 3))
    path = save_png(tmp_path / "out.png", image, metadata=metadata)
    assert path == tmp_path / "out.png"
    assert read_png_metadata(path) == metadata
    assert np.array_equal(np.asarray(Image.open(path)), image)


def test_parameters_text_is_readable_by_plain_pillow(tmp_path: Path) -> None:
    text = "Steps: 50, Sampler: DDIM, eta: 0.0, Seed: 7"
    path = save_png(tmp_path / "p.png", _noise((4, 4, 3)), parameters=text, metadata={"a": 1})
    with Image.open(path) as im:
        assert im.text[PARAMETERS_KEY] == text
        assert METADATA_KEY in im.text


def test_png_without_metadata_reads_as_none(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert read_png_metadata(tmp_path / "plain.png") is None
    save_png(tmp_path / "ours.png", _noise((4, 4, 3)))
    assert read_png_metadata(tmp_path / "ours.png") is None


def test_metadata_of_missing_or_non_png_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.png"):
        read_png_metadata(tmp_path / "gone.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.jpg")
    with pytest.raises(InputError, match=r"photo\.jpg.*not a PNG"):
        read_png_metadata(tmp_path / "photo.jpg")


def test_corrupt_metadata_json_says_unreadable(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text(METADATA_KEY, '{"sampler": "ddim", ')
    Image.new("RGB", (4, 4)).save(tmp_path / "bad.png", pnginfo=info)
    with pytest.raises(InputError, match="unreadable"):
        read_png_metadata(tmp_path / "bad.png")


def test_upscale_repeats_each_pixel(tmp_path: Path) -> None:
    image = _noise((5, 3, 3))
    path = save_png(tmp_path / "big.png", image, upscale=4)
    with Image.open(path) as im:
        big = np.asarray(im)
    assert big.shape == (20, 12, 3)
    assert np.array_equal(big[::4, ::4], image)
    assert np.array_equal(big[3::4, 3::4], image)
    assert np.array_equal(big[1::4, 2::4], image)


@pytest.mark.parametrize("upscale", [0, -2, 1.5, True])
def test_bad_upscale_is_an_input_error(tmp_path: Path, upscale: object) -> None:
    with pytest.raises(InputError, match="upscale"):
        save_png(tmp_path / "x.png", _noise((2, 2, 3)), upscale=upscale)  # type: ignore[arg-type]


def test_grey_images_save_as_grey(tmp_path: Path) -> None:
    image = _noise((4, 5, 1))
    with Image.open(save_png(tmp_path / "g.png", image)) as im:
        assert im.mode == "L"
        assert np.array_equal(np.asarray(im), image[..., 0])


def test_png_needs_a_png_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.png"):
        save_png(tmp_path / "x.jpg", _noise((2, 2, 3)))


def test_overwrite_is_refused_then_allowed(tmp_path: Path) -> None:
    path = save_png(tmp_path / "o.png", _noise((4, 4, 3), seed=1), metadata={"v": 1})
    with pytest.raises(OutputExistsError, match=r"o\.png"):
        save_png(path, _noise((4, 4, 3), seed=2), metadata={"v": 2})
    assert read_png_metadata(path) == {"v": 1}
    save_png(path, _noise((4, 4, 3), seed=2), metadata={"v": 2}, overwrite=True)
    assert read_png_metadata(path) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", _noise((4, 4, 3)))
    save_animation(tmp_path / "a.gif", [_noise((4, 4, 3), seed=s) for s in range(3)])

    def fail(f: BinaryIO) -> None:
        f.write(b"half a file")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(tmp_path / "b.png", fail)
    with pytest.raises(ValueError):  # float pixels fail inside the writer path
        save_png(tmp_path / "c.png", np.zeros((4, 4, 3), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.png"]


def test_files_follow_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_png(tmp_path / "m.png", _noise((2, 2, 3)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# --- grids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "rows", "cols"), [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 2), (5, 2, 3)]
)
def test_grid_shape(count: int, rows: int, cols: int) -> None:
    images = _noise((count, 6, 4, 3))
    grid = make_grid(images, padding=2)
    assert grid.shape == (rows * 6 + (rows - 1) * 2, cols * 4 + (cols - 1) * 2, 3)
    assert grid.dtype == np.uint8


def test_grid_places_each_image_in_its_cell() -> None:
    images = _noise((5, 6, 4, 3), seed=3)
    grid = make_grid(list(images), columns=2, padding=3, background=17)
    assert grid.shape == (3 * 6 + 2 * 3, 2 * 4 + 3, 3)
    for index in range(5):
        row, col = divmod(index, 2)
        top, left = row * 9, col * 7
        assert np.array_equal(grid[top : top + 6, left : left + 4], images[index])
    assert (grid[6:9] == 17).all()  # padding between rows
    assert (grid[18:, 4:] == 17).all()  # the unused last cell and its padding


def test_grid_of_one_without_padding_is_a_copy() -> None:
    images = _noise((1, 5, 5, 3))
    grid = make_grid(images, padding=0)
    assert np.array_equal(grid, images[0])
    grid[0, 0] = 1 + grid[0, 0] % 200
    assert not np.array_equal(grid, images[0])


def test_grid_rejects_bad_settings() -> None:
    with pytest.raises(InputError, match="column"):
        make_grid(_noise((2, 4, 4, 3)), columns=0)
    with pytest.raises(InputError, match="padding"):
        make_grid(_noise((2, 4, 4, 3)), padding=-1)


# --- animations -------------------------------------------------------------------------------


def _frames(count: int, size: int = 16) -> list[np.ndarray]:
    """Distinct flat frames (GIF merges identical ones): brightness rises frame by frame."""
    levels = np.linspace(0, 255, count).round().astype(np.uint8)
    frames = []
    for level in levels:
        frame = np.zeros((size, size, 3), np.uint8)
        frame[..., 0] = level
        frame[: size // 2, :, 1] = 255 - level
        frames.append(frame)
    return frames


def _read_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as im:
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]
        im.seek(0)
        durations = []
        for index in range(im.n_frames):
            im.seek(index)
            im.load()  # WebP sets a frame's duration only once it is decoded
            durations.append(im.info["duration"])
    return frames, durations


def test_gif_is_thinned_keeps_first_and_last_and_holds_the_end(tmp_path: Path) -> None:
    frames = _frames(30)
    path = save_animation(tmp_path / "run.gif", frames, duration_ms=50, max_frames=8)
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.info.get("loop") == 0
    read, durations = _read_frames(path)
    assert 2 <= len(read) <= 8
    # GIF goes through a palette: compare approximately.
    assert np.abs(read[0].astype(int) - frames[0]).max() <= 8
    assert np.abs(read[-1].astype(int) - frames[-1]).max() <= 8
    assert durations[-1] >= 1000
    assert durations[0] == 50


def test_lossless_webp_keeps_first_and_last_exactly(tmp_path: Path) -> None:
    frames = [_noise((12, 10, 3), seed=s) for s in range(10)]
    path = save_animation(tmp_path / "run.webp", frames, duration_ms=40, max_frames=4)
    read, durations = _read_frames(path)
    assert len(read) == 4
    assert np.array_equal(read[0], frames[0])
    assert np.array_equal(read[-1], frames[-1])
    assert np.array_equal(read[1], frames[3])  # even thinning: 0, 3, 6, 9
    assert durations[-1] >= 1000


def test_short_animation_keeps_every_frame(tmp_path: Path) -> None:
    frames = [_noise((8, 8, 3), seed=s) for s in range(5)]
    read, _ = _read_frames(save_animation(tmp_path / "all.webp", frames))
    assert len(read) == 5
    assert all(np.array_equal(a, b) for a, b in zip(read, frames, strict=True))


def test_grey_frames_animate(tmp_path: Path) -> None:
    frames = [f[..., :1] for f in _frames(4)]
    read, _ = _read_frames(save_animation(tmp_path / "grey.webp", frames))
    assert np.array_equal(read[-1][..., 0], frames[-1][..., 0])


def test_unknown_animation_suffix_names_both_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.gif.*\.webp"):
        save_animation(tmp_path / "run.mp4", _frames(3))
    assert not (tmp_path / "run.mp4").exists()


def test_frames_of_mixed_size_are_refused(tmp_path: Path) -> None:
    frames = [_noise((8, 8, 3)), _noise((8, 9, 3))]
    with pytest.raises(InputError, match="one size"):
        save_animation(tmp_path / "mixed.gif", frames)
    assert list(tmp_path.iterdir()) == []


def test_animation_overwrite_is_refused(tmp_path: Path) -> None:
    save_animation(tmp_path / "a.gif", _frames(3))
    with pytest.raises(OutputExistsError):
        save_animation(tmp_path / "a.gif", _frames(3))
    save_animation(tmp_path / "a.gif", _frames(3), overwrite=True)
