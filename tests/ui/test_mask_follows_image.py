"""The mask belongs to its image: closing or replacing the image lets it go (asking first when
it was painted by hand), so the next Run is not an inpainting by accident."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from diffusion_studio.core.resources import sample_images
from tests.ui.test_studio import canvas_point


def paint_a_stroke(qtbot, window) -> None:
    canvas = window.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, 2, 3))
    qtbot.mouseMove(canvas, canvas_point(window, 9, 3))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=canvas_point(window, 9, 3))


def two_images():
    first, second = sample_images()[:2]
    return first, second


def test_a_preset_mask_goes_with_its_image(window, mask_questions) -> None:
    first, second = two_images()
    window.load_source(first)
    window.canvas_panel.apply_preset("half")
    assert window.state.inpainting
    window.load_source(second)
    assert not window.canvas.has_mask and not window.state.inpainting
    assert window.current_job().inpaint is False  # Run now generates, as the panel says
    assert mask_questions["count"] == 0  # a preset is made again in one click: not asked
    window.canvas.undo()  # and the undo brings it back all the same
    assert window.canvas.has_mask


def test_closing_the_image_clears_its_mask(window) -> None:
    window.load_source(two_images()[0])
    window.canvas_panel.apply_preset("wide")
    window.clear_source()
    assert window.canvas.source is None and not window.canvas.has_mask


def test_a_painted_mask_is_asked_about_before_it_goes(qtbot, window, mask_questions) -> None:
    first, second = two_images()
    window.load_source(first)
    paint_a_stroke(qtbot, window)
    painted = window.canvas.mask
    assert window.state.mask_by_hand

    mask_questions["answer"] = "cancel"  # the image stays, and its mask
    source = window.canvas.source.copy()
    assert not window.load_source(second)
    assert np.array_equal(window.canvas.source, source)
    assert np.array_equal(window.canvas.mask, painted)

    mask_questions["answer"] = "keep"  # the new image, the same mask
    assert window.load_source(second)
    assert not np.array_equal(window.canvas.source, source)
    assert np.array_equal(window.canvas.mask, painted)

    mask_questions["answer"] = "clear"
    assert window.clear_source()
    assert not window.canvas.has_mask
    assert mask_questions["count"] == 3


def test_a_result_used_as_source_asks_about_a_painted_mask(qtbot, window, mask_questions):
    window.load_source(two_images()[0])
    paint_a_stroke(qtbot, window)
    window.set_source_image(window.canvas.composite())
    assert mask_questions["count"] == 1 and not window.canvas.has_mask
