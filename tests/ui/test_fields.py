"""The fields as a person uses them: what is typed is kept, and the wheel scrolls the panel
past fields without changing them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea


def type_into(qtbot, box, text: str) -> None:
    """Select what the box shows and type `text`, key by key, as a person does."""
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)


@pytest.mark.parametrize("typed", ["0.35", "0.25", "0.123", "1", "0.05"])
def test_the_eta_box_keeps_what_is_typed(qtbot, window, typed) -> None:
    panel = window.panel
    type_into(qtbot, panel.eta_box, typed)
    assert panel.eta_box.value() == pytest.approx(float(typed))
    assert panel.request().eta == pytest.approx(float(typed))
    assert panel.eta.value() == round(float(typed) * 1000)  # the slider follows


def test_the_eta_slider_sets_the_box(window) -> None:
    window.panel.eta.setValue(420)
    assert window.panel.eta_box.value() == pytest.approx(0.42)
    assert window.panel.request().eta == pytest.approx(0.42)


def test_every_number_field_keeps_what_is_typed(qtbot, window, tiny_classifier_dir) -> None:
    panel = window.panel
    window.load_classifier_folder(tiny_classifier_dir)  # its scale comes alive
    window.canvas_panel.apply_preset("half")
    window.set_source_image(window.canvas.composite())  # an image and a mask: RePaint's fields
    window.canvas_panel.apply_preset("half")
    fields = {
        panel.steps: ("37", 37),
        panel.batch: ("12", 12),
        panel.guidance: ("2.75", 2.75),
        panel.classifier_scale: ("12.25", 12.25),
        panel.jump_length: ("15", 15),
        panel.jump_n_sample: ("4", 4),
        window.canvas_panel.size: ("11", 11),
    }
    for box, (typed, wanted) in fields.items():
        assert box.isEnabled(), box
        type_into(qtbot, box, typed)
        assert box.value() == pytest.approx(wanted), typed
    request = panel.request()
    assert (request.num_inference_steps, request.batch_size) == (37, 12)
    assert (request.guidance_scale, request.classifier_scale) == (2.75, 12.25)
    assert (request.jump_length, request.jump_n_sample) == (15, 4)


def wheel(widget, down: bool = True) -> None:
    """One notch of the mouse wheel over the middle of `widget`."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    delta = QPoint(0, -120 if down else 120)
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre)),
        QPoint(),
        delta,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def settings_scroll(window) -> QScrollArea:
    scrolls = window.findChildren(QScrollArea)
    return next(s for s in scrolls if s.widget().isAncestorOf(window.panel))


def test_the_wheel_scrolls_the_panel_past_fields_without_changing_them(qtbot, window) -> None:
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: settings_scroll(window).verticalScrollBar().maximum() > 0)
    panel = window.panel
    bar = settings_scroll(window).verticalScrollBar()
    fields = [panel.spacing, panel.steps, panel.eta, panel.eta_box, panel.batch, panel.class_box]
    before = [f.currentIndex() if hasattr(f, "currentIndex") else f.value() for f in fields]
    for field in fields:
        position = bar.value()
        wheel(field)
        assert bar.value() > position or bar.value() == bar.maximum(), field
        bar.setValue(0)
    after = [f.currentIndex() if hasattr(f, "currentIndex") else f.value() for f in fields]
    assert after == before


def test_a_focused_field_takes_the_wheel(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    steps = window.panel.steps
    steps.setValue(20)
    steps.setFocus()
    qtbot.waitUntil(steps.hasFocus)
    wheel(steps, down=True)
    assert steps.value() == 19
