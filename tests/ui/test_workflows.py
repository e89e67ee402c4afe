"""Compare and fork in the window: a compare tab whose cells follow the run from one x_T and
end with their distance to the reference; a fork from a scrubbed step that, unchanged, ends on
its parent's image and sits beside it in the gallery."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QFileDialog

from diffusion_studio.core.record import read_record
from tests.ui.test_studio import RUN_TIMEOUT_MS, run_and_wait


def test_a_compare_runs_every_cell_from_one_noise(qtbot, window, tmp_path, monkeypatch) -> None:
    view = window.compare_view
    window.panel.seed.setText("4")
    for which, axis, values in (("rows", "sampler", "ddpm, ddim"), ("columns", "steps", "3, 5")):
        view.axis[which].setCurrentIndex(view.axis[which].findData(axis))
        view.values[which].setText(values)
    assert "4 cells (and the reference): 116 network calls" in view.cost.text()
    frames = []
    window.sampler.frame.connect(frames.append)
    with qtbot.waitSignal(window.sampler.queue_done, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    assert len(view.cells) == 5 and window.gallery.count() == 5
    notes = [cell.note.text() for cell in view.cells]
    assert notes[-1] == "reference" and all(n.startswith("RMS ") for n in notes[:4])
    assert {s.job for s in frames if s.frame.total == 100} == {4}  # followed live, in its cell
    assert all(not cell.x_t.pixmap().isNull() for cell in view.cells)  # each ends on its image
    view.reference_chosen.emit(3)  # right-click a cell: the others measured against it
    assert view.cells[3].note.text() == "reference" and view.cells[4].note.text() != "reference"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    view.export_button.click()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "00001-compare.png" in names and "00001-r1c1-4.png" in names
    record = read_record(tmp_path / "00001-r1c1-4.png")
    assert record.cell.row_label == "DDIM" and record.cell.column_label == "S=5"
    assert record.request.seed == 4 and record.request.num_inference_steps == 5


def test_a_fork_from_a_step_goes_on_beside_its_parent(qtbot, window) -> None:
    panel = window.panel
    panel.buttons["ddpm"].setChecked(True)
    panel.steps.setValue(6)
    panel.seed.setText("9")
    parent = run_and_wait(qtbot, window)
    live = window.live
    assert live.fork_bar.isEnabled() and window.gallery.count() == 1
    live.scrub.setValue(2)  # after step 3 of 6
    assert live.fork_steps.value() == 3 and live.fork_button.isEnabled()
    fork = run_and_wait(qtbot, window, live.fork_button.click)
    assert np.array_equal(fork.images, parent.images)  # unchanged: the parent's image
    assert fork.job.fork.at_step == 3 and len(fork.calls) == 3
    labels = [window.gallery.item(i).text() for i in range(window.gallery.count())]
    assert labels == ["fork @3", "seed 9"]
    window.gallery.setCurrentRow(1)  # the parent again, forked with DDIM from step 3
    live.scrub.setValue(2)
    panel.buttons["ddim"].setChecked(True)
    other = run_and_wait(qtbot, window, live.fork_button.click)
    assert other.job.request.sampler == "ddim" and not np.array_equal(other.images, parent.images)
    live.scrub.setValue(live.scrub.maximum())
    assert not live.fork_button.isEnabled()  # nothing left after the last step
    live.fork_steps.setValue(1)
    assert live.fork_steps.text() == "1 step"  # not "1 steps"


def test_an_enlargement_s_png_says_the_window_does_not_make_it(window, tmp_path) -> None:
    from diffusion_studio.cli import main
    from diffusion_studio.core.resources import sample_images

    out = tmp_path / "big.png"
    argv = ["upscale", "--model", window.model.info.path, "--image", str(sample_images()[0]),
            "--steps", "2", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert window.open_file(out)
    assert "an enlargement (DDNM), which the window does not make yet" in window.error.text()
