"""Masks: preset shapes and convention (True = generate), random masks, files, tensors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.masks import (
    HALF_SIDES,
    MASK_PRESETS,
    fit_mask,
    invert_mask,
    load_mask,
    mask_coverage,
    mask_to_tensor,
    parse_preset,
    preset_mask,
    resize_mask,
    save_mask,
)

RANDOM_SIZES = [(32, 32), (64, 64), (256, 256), (48, 80)]


def _erosion_depth(mask: np.ndarray) -> float:
    """Mean number of 4-neighbour erosions a generated pixel survives: about half a stroke width."""
    depth = np.zeros(mask.shape, dtype=int)
    current = mask.copy()
    while current.any():
        depth += current
        p = np.pad(current, 1)
        current = current & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return float(depth[mask].mean())


def test_preset_names_are_the_documented_six() -> None:
    assert MASK_PRESETS == (
        "wide",
        "thin",
        "outer",
        "half",
        "every-second-pixel",
        "alternating-lines",
    )
    assert HALF_SIDES == ("left", "right", "top", "bottom")


@pytest.mark.parametrize("preset", MASK_PRESETS)
@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_every_preset_is_a_bool_mask_of_height_by_width(preset: str, size: tuple[int, int]) -> None:
    mask = preset_mask(preset, size, seed=3)
    assert mask.shape == size
    assert mask.dtype == np.bool_
    assert 0.0 < mask_coverage(mask) < 1.0


def test_every_second_pixel_keeps_exactly_the_stride_two_grid() -> None:
    mask = preset_mask("every-second-pixel", (32, 32))
    assert not mask[::2, ::2].any()
    assert mask[1::2, :].all()
    assert mask[:, 1::2].all()
    assert mask_coverage(mask) == 0.75


def test_alternating_lines_generates_exactly_the_odd_rows() -> None:
    mask = preset_mask("alternating-lines", (16, 20))
    assert mask[1::2].all()
    assert not mask[::2].any()


@pytest.mark.parametrize(
    ("side", "generated"),
    [
        ("left", (slice(None), slice(0, 16))),
        ("right", (slice(None), slice(16, 32))),
        ("top", (slice(0, 8), slice(None))),
        ("bottom", (slice(8, 16), slice(None))),
    ],
)
def test_half_generates_the_named_side(side: str, generated: tuple[slice, slice]) -> None:
    mask = preset_mask("half", (16, 32), side=side)
    expected = np.zeros((16, 32), dtype=bool)
    expected[generated] = True
    np.testing.assert_array_equal(mask, expected)


def test_half_defaults_to_generating_the_right_like_repaint_genhalf() -> None:
    mask = preset_mask("half", (8, 8))
    assert not mask[:, :4].any()
    assert mask[:, 4:].all()


def test_half_of_an_odd_size_keeps_the_middle_line() -> None:
    right = preset_mask("half", (5, 7), side="right")
    left = preset_mask("half", (5, 7), side="left")
    assert not right[:, :4].any() and right[:, 4:].all()
    np.testing.assert_array_equal(left, right[:, ::-1])
    bottom = preset_mask("half", (7, 5), side="bottom")
    assert not bottom[:4].any() and bottom[4:].all()


@pytest.mark.parametrize(("side", "keep"), [(256, slice(96, 160)), (32, slice(12, 20))])
def test_outer_keeps_exactly_the_centre_quarter(side: int, keep: slice) -> None:
    mask = preset_mask("outer", (side, side))
    expected = np.ones((side, side), dtype=bool)
    expected[keep, keep] = False
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("preset", ["wide", "thin"])
@pytest.mark.parametrize("size", RANDOM_SIZES)
def test_random_presets_are_seeded_never_empty_and_at_most_half(
    preset: str, size: tuple[int, int]
) -> None:
    masks = [preset_mask(preset, size, seed=seed) for seed in range(6)]
    for seed, mask in enumerate(masks):
        assert mask.shape == size and mask.dtype == np.bool_
        assert 0.0 < mask_coverage(mask) <= 0.5
        np.testing.assert_array_equal(mask, preset_mask(preset, size, seed=seed))
    distinct = {mask.tobytes() for mask in masks}
    assert len(distinct) == len(masks)


@pytest.mark.parametrize("size", [(256, 256), (64, 64), (48, 80)])
def test_thin_strokes_are_thinner_than_wide_ones(size: tuple[int, int]) -> None:
    wide = np.mean([_erosion_depth(preset_mask("wide", size, seed=s)) for s in range(8)])
    thin = np.mean([_erosion_depth(preset_mask("thin", size, seed=s)) for s in range(8)])
    assert thin < 0.5 * wide


def test_random_strokes_scale_with_the_image() -> None:
    big = np.mean([_erosion_depth(preset_mask("wide", (256, 256), seed=s)) for s in range(8)])
    small = np.mean([_erosion_depth(preset_mask("wide", (64, 64), seed=s)) for s in range(8)])
    assert 2.5 < big / small < 5.5


def test_random_presets_refuse_tiny_images_and_negative_seeds() -> None:
    with pytest.raises(InputError, match="at least"):
        preset_mask("thin", (4, 64))
    with pytest.raises(InputError, match="seed"):
        preset_mask("wide", (32, 32), seed=-1)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: preset_mask("square", (8, 8)), "every-second-pixel"),
        (lambda: preset_mask("half", (8, 8), side="middle"), "bottom"),
        (lambda: preset_mask("outer", (0, 8)), "positive"),
    ],
)
def test_preset_mask_rejects_bad_input_with_the_choices(call, names: str) -> None:
    with pytest.raises(InputError, match=names):
        call()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("half", ("half", "right")),
        ("half-left", ("half", "left")),
        ("Half_Top", ("half", "top")),
        ("half-bottom", ("half", "bottom")),
        ("every_second_pixel", ("every-second-pixel", "right")),
        ("Every Second Pixel", ("every-second-pixel", "right")),
        ("sr2", ("every-second-pixel", "right")),
        ("nn2", ("every-second-pixel", "right")),
        ("lines", ("alternating-lines", "right")),
        ("ev2li", ("alternating-lines", "right")),
        ("WIDE", ("wide", "right")),
        ("thin", ("thin", "right")),
        ("outer", ("outer", "right")),
    ],
)
def test_parse_preset_accepts_what_people_type(name: str, expected: tuple[str, str]) -> None:
    assert parse_preset(name) == expected


@pytest.mark.parametrize("name", ["square", "half-middle", "", "wide-left"])
def test_parse_preset_names_the_valid_choices(name: str) -> None:
    with pytest.raises(InputError, match="alternating-lines") as info:
        parse_preset(name)
    assert "half-left" in str(info.value)


def test_parsed_names_build_masks() -> None:
    preset, side = parse_preset("half-top")
    np.testing.assert_array_equal(
        preset_mask(preset, (8, 8), side=side), preset_mask("half", (8, 8), side="top")
    )


def test_invert_mask_swaps_generate_and_keep() -> None:
    mask = preset_mask("half", (4, 6))
    inverted = invert_mask(mask)
    assert inverted.dtype == np.bool_
    np.testing.assert_array_equal(inverted, ~mask)
    np.testing.assert_array_equal(invert_mask(mask.astype(np.uint8) * 255), ~mask)


def test_resize_mask_is_nearest_and_binary() -> None:
    mask = np.array([[True, False], [False, True]])
    big = resize_mask(mask, (4, 6))
    assert big.dtype == np.bool_ and big.shape == (4, 6)
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 3), dtype=bool)))
    np.testing.assert_array_equal(resize_mask(big, (2, 2)), mask)


def test_resize_mask_samples_pixel_centres() -> None:
    # 3 -> 2 rows: the centres of the new rows fall on old rows 0.75 and 2.25, so rows 0 and 2.
    column = np.array([[True], [False], [True]])
    np.testing.assert_array_equal(resize_mask(column, (2, 1)), [[True], [True]])
    # 48 -> 55 columns: new column 27 is centred exactly on the edge of old columns 23 and 24.
    row = np.zeros((1, 48), dtype=bool)
    row[0, 24] = True
    assert np.flatnonzero(resize_mask(row, (1, 55))[0]).tolist() == [27, 28]


def test_fit_mask_centre_crops_to_the_aspect_then_resizes() -> None:
    wide = np.zeros((40, 64), dtype=bool)
    wide[:, 12:52] = preset_mask("half", (40, 40), side="left")  # the centre 40x40 survives
    np.testing.assert_array_equal(
        fit_mask(wide, (20, 20)), preset_mask("half", (20, 20), side="left")
    )
    tall = np.zeros((64, 40), dtype=bool)
    tall[12:52] = preset_mask("outer", (40, 40))
    np.testing.assert_array_equal(fit_mask(tall, (40, 40)), preset_mask("outer", (40, 40)))
    same = preset_mask("thin", (32, 32))
    np.testing.assert_array_equal(fit_mask(same, (32, 32)), same)


def test_save_load_round_trip_is_exact_and_white_means_generate(tmp_path: Path) -> None:
    mask = preset_mask("wide", (40, 56), seed=1)
    path = save_mask(mask, tmp_path / "mask.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        pixels = np.asarray(image)
    assert set(np.unique(pixels)) <= {0, 255}
    np.testing.assert_array_equal(pixels == 255, mask)
    np.testing.assert_array_equal(load_mask(path), mask)


def test_repaint_style_keep_white_files_round_trip_with_invert(tmp_path: Path) -> None:
    mask = preset_mask("outer", (32, 32))
    path = save_mask(mask, tmp_path / "repaint.png", invert=True)
    with Image.open(path) as image:
        assert np.asarray(image)[16, 16] == 255  # RePaint: white = keep, the centre here
    np.testing.assert_array_equal(load_mask(path, invert=True), mask)
    np.testing.assert_array_equal(load_mask(path), ~mask)


def test_load_mask_binarises_grey_at_128_and_ignores_colour(tmp_path: Path) -> None:
    values = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "grey.png"), [[False, False, True, True]])
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = 255
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.jpg", quality=100)
    np.testing.assert_array_equal(load_mask(tmp_path / "rgb.jpg"), [[False, True]])


def test_load_mask_treats_transparent_as_unpainted(tmp_path: Path) -> None:
    rgba = np.full((2, 2, 4), 255, dtype=np.uint8)  # white everywhere, but only one pixel opaque
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "strokes.png")
    np.testing.assert_array_equal(
        load_mask(tmp_path / "strokes.png"), [[True, False], [False, False]]
    )
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "empty.png")
    assert not load_mask(tmp_path / "empty.png").any()
    assert load_mask(tmp_path / "empty.png", invert=True).all()


def test_load_mask_resizes_with_nearest_and_stays_binary(tmp_path: Path) -> None:
    mask = preset_mask("every-second-pixel", (8, 8))
    path = save_mask(mask, tmp_path / "sr.png")
    big = load_mask(path, (16, 16))
    assert big.dtype == np.bool_ and big.shape == (16, 16)
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 2), dtype=bool)))
    np.testing.assert_array_equal(load_mask(path, (8, 8)), mask)


def test_load_mask_allows_one_value_masks(tmp_path: Path) -> None:
    save_mask(np.ones((4, 4), dtype=bool), tmp_path / "all.png")
    save_mask(np.zeros((4, 4), dtype=bool), tmp_path / "none.png")
    assert load_mask(tmp_path / "all.png").all()
    assert not load_mask(tmp_path / "none.png").any()


def test_load_mask_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.png"
    with pytest.raises(InputError, match=re.escape(str(path))):
        load_mask(path)


def test_load_mask_not_an_image_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is a text file, not a picture")
    with pytest.raises(InputError, match=re.escape(str(path))):
        load_mask(path)


def test_load_mask_truncated_png_names_the_path(tmp_path: Path) -> None:
    full = save_mask(preset_mask("wide", (64, 64)), tmp_path / "full.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:80])
    with pytest.raises(InputError, match=re.escape(str(cut))):
        load_mask(cut)


def test_save_mask_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = save_mask(np.zeros((4, 4), dtype=bool), tmp_path / "m.png")
    with pytest.raises(OutputExistsError):
        save_mask(np.ones((4, 4), dtype=bool), path)
    assert not load_mask(path).any()
    save_mask(np.ones((4, 4), dtype=bool), path, overwrite=True)
    assert load_mask(path).all()


def test_save_mask_refuses_lossy_or_misnamed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.png"):
        save_mask(np.zeros((4, 4), dtype=bool), tmp_path / "m.jpg")
    assert not (tmp_path / "m.jpg").exists()


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[True, False], [False, False]]),
        np.array([[1, 0], [0, 0]], dtype=np.uint8),
        np.array([[255, 0], [0, 0]], dtype=np.uint8),
    ],
)
def test_mask_to_tensor_is_n1hw_float_with_one_for_generate(mask: np.ndarray) -> None:
    tensor = mask_to_tensor(mask)
    assert tensor.shape == (1, 1, 2, 2)
    assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    assert tensor.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


@pytest.mark.parametrize("shape", [(2, 2, 3), (4,), (1, 1, 4, 4)])
def test_mask_helpers_reject_arrays_that_are_not_two_dimensional(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="2-D"):
        mask_to_tensor(np.zeros(shape, dtype=bool))


def test_mask_coverage_is_the_share_generated() -> None:
    assert mask_coverage(np.zeros((4, 4), dtype=bool)) == 0.0
    assert mask_coverage(np.ones((4, 4), dtype=bool)) == 1.0
    assert mask_coverage(preset_mask("half", (4, 4))) == 0.5
