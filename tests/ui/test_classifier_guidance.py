"""Classifier guidance in the window: a classifier that fits is offered with its scale, a run
is guided and plots its push per step, one that does not fit is one message, and a model it
does not fit drops it."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication, QScrollArea

from diffusion_studio.core.model_files import load_model, save_model
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import CLASS_NAMES, make_classifier
from tests.ui.test_studio import run_and_wait


def test_a_guided_run_in_the_window(qtbot, window, tiny_classifier_dir) -> None:
    panel = window.panel
    assert panel.classifier_name.text() == "none" and not panel.classifier_scale.isEnabled()
    assert window.load_classifier_folder(tiny_classifier_dir)
    assert panel.classifier_name.text() == "tiny classifier"
    panel.class_box.setCurrentIndex(panel.class_box.findData(1))
    assert panel.classifier_scale.isEnabled()
    panel.steps.setValue(6)
    plain = run_and_wait(qtbot, window)
    panel.classifier_scale.setValue(30.0)
    assert "classifier scale 30 (a gradient each)" in panel.calls.text()
    guided = run_and_wait(qtbot, window)
    assert guided.job.classifier is not None and guided.job.request.classifier_scale == 30.0
    assert not np.array_equal(guided.images, plain.images)
    plot = window.live.guidance
    assert plot.isVisible() and len(plot._calls) == 6 and min(plot._values) > 0
    panel.class_box.setCurrentIndex(panel.class_box.findData(None))  # unconditional: no guide
    assert not panel.classifier_scale.isEnabled() and panel.request().classifier_scale == 0


def test_a_classifier_that_does_not_fit_changes_nothing(
    qtbot, window, tmp_path, tiny_classifier_dir, tiny_uncond_dir
) -> None:
    other = save_model(make_classifier(size=32), NoiseSchedule.linear(100), tmp_path / "c32",
                       studio={"class_names": CLASS_NAMES})  # fmt: skip
    assert window.load_classifier_folder(tiny_classifier_dir)
    assert not window.load_classifier_folder(other)
    assert "cannot guide the model" in window.error.text() and "32x32" in window.error.text()
    assert not window.load_classifier_folder(tmp_path)
    assert "Could not open the classifier" in window.error.text()
    assert window.state.classifier.name == "tiny classifier"  # the one before is kept
    window.set_model(load_model(tiny_uncond_dir))  # T = 1000: the classifier's noise differs
    assert window.state.classifier is None and window.panel.classifier_name.text() == "none"


def test_the_embedded_model_comes_with_its_shipped_classifier(window, tiny_model_dir) -> None:
    window.set_model(load_model(None, device="cpu"))  # the default model: its guide is offered
    panel = window.panel
    assert panel.classifier_name.text() == "Emoji noise-aware classifier"
    scroll = window.findChild(QScrollArea)  # its long name does not push the panel wider
    QApplication.processEvents()  # the layouts take the new texts' sizes
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    panel.class_box.setCurrentIndex(panel.class_box.findText("Flags"))
    assert panel.classifier_scale.isEnabled()
    window.set_model(load_model(tiny_model_dir))  # another model: the shipped guide does not fit
    assert window.state.classifier is None and panel.classifier_name.text() == "none"


def test_the_three_plots_fit_beside_each_other(qtbot, window) -> None:
    from PySide6.QtCore import Qt

    window.resize(1360, 860)
    window.live.start_run(list(range(9, -1, -1)), guided=True)
    qtbot.waitUntil(lambda: window.live.guidance.isVisible())
    for plot in (window.live.schedule, window.live.path, window.live.guidance):
        needed = plot.getPlotItem().effectiveSizeHint(Qt.SizeHint.MinimumSize).width()
        assert needed <= plot.width(), f"{plot.getPlotItem().titleLabel.text} is cut off"


def test_fields_that_later_need_more_width_widen_the_dock_instead_of_being_cut_off(
    qtbot, window
) -> None:
    scroll = window.findChild(QScrollArea)
    before = scroll.width()
    window.panel.setMinimumWidth(scroll.viewport().width() + 60)  # as a longer text would

    def fits() -> bool:
        return scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()

    assert not fits()  # the panel needs more than it had
    qtbot.waitUntil(fits, timeout=2000)
    assert scroll.width() > before
