"""Screenshots of the real window for the README: mid-run, classifier guidance mid-run, a
finished inpainting and the forward process; with --tasks the other tasks instead: a 2x
enlargement, a panorama grown by four presses on the Grow tab, a colorization.

    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/screenshots.py --out docs
    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/screenshots.py --tasks --out docs

Uses the embedded model (or --model FOLDER), a throwaway settings file, and the shipped
sample images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def wait_until(app, condition, timeout_s: float = 600.0) -> None:
    started = time.monotonic()
    while not condition():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("the window did not get there in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the embedded model)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--class", dest="class_", default="Smileys & Emotion")
    parser.add_argument("--guided-class", default="Flags")
    parser.add_argument("--classifier-scale", type=float, default=5.0)
    parser.add_argument("--image", default="fox-face", help="a sample image's name")
    parser.add_argument("--tasks", action="store_true", help="the other tasks' screenshots")
    args = parser.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.resources import sample_images
    from diffusion_studio.ui.main_window import MainWindow

    app = QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(load_model(args.model), settings, load_default=False)
    window.ask_discard = lambda count: True  # its results are throwaway: quit without asking
    window.resize(1360, 860)
    window.show()
    wait_until(app, window.isVisible)
    args.out.mkdir(parents=True, exist_ok=True)
    panel = window.panel
    if args.tasks:
        tasks(app, window, args)
        return

    # 1. mid-run: DDIM from noise, a batch of one class, x_t beside the predicted x_0
    panel.buttons["ddim"].setChecked(True)
    panel.steps.setValue(100)
    panel.batch.setValue(4)
    panel.seed.setText("7")
    panel.class_box.setCurrentIndex(max(0, panel.class_box.findText(args.class_)))
    panel.guidance.setValue(3.0)
    frames = []
    window.sampler.frame.connect(frames.append)

    def grab_mid_run(at_call: int, name: str) -> None:
        """Run, save the window once the run reaches a network call, let the run end."""
        frames.clear()
        window.run()
        wait_until(app, lambda: frames and frames[-1].frame.index >= at_call)
        app.processEvents()
        window.grab().save(str(args.out / name))
        wait_until(app, lambda: not window.sampler.running)

    grab_mid_run(38, "studio-mid-run.png")

    # 2. classifier guidance mid-run: the unconditional model (guidance 0) steered to a class by
    # the shipped noise-aware classifier; the live view plots the guidance term's size per step
    panel.steps.setValue(50)
    panel.class_box.setCurrentIndex(max(0, panel.class_box.findText(args.guided_class)))
    panel.guidance.setValue(0.0)
    panel.classifier_scale.setValue(args.classifier_scale)
    grab_mid_run(30, "studio-classifier-guidance.png")
    panel.classifier_scale.setValue(0.0)
    panel.guidance.setValue(3.0)

    # 3. a finished inpainting: a sample image, half of it regenerated with RePaint
    source = next(p for p in sample_images() if p.stem == args.image)
    window.load_source(source)
    window.canvas_panel.side.setCurrentText("left")
    window.canvas_panel.apply_preset("half")
    panel.batch.setValue(1)
    panel.steps.setValue(50)
    panel.jump_length.setValue(10)
    panel.jump_n_sample.setValue(5)
    panel.class_box.setCurrentIndex(max(0, panel.class_box.findText("Animals & Nature")))
    window.run()
    wait_until(app, lambda: not window.sampler.running)
    app.processEvents()
    window.grab().save(str(args.out / "studio-inpainting.png"))

    # 4. the forward process tab, on the same image
    window.tabs.setCurrentIndex(1)
    window.forward.t.setValue(300)
    app.processEvents()
    window.grab().save(str(args.out / "studio-forward-process.png"))
    window.close()
    print(f"wrote {', '.join(sorted(p.name for p in args.out.glob('studio-*.png')))}")


def tasks(app, window, args) -> None:
    """Enlarge 2x, a panorama grown by four presses, a colorization."""
    import numpy as np
    from PIL import Image

    from diffusion_studio.core.resources import sample_images

    panel = window.panel
    panel.buttons["ddim"].setChecked(True)
    panel.steps.setValue(25)
    panel.seed.setText("3")
    panel.jump_n_sample.setValue(5)
    source = next(p for p in sample_images() if p.stem == args.image)
    window.load_source(source)
    wait_until(app, lambda: not window.sampler.running)

    # 1. Image > Enlarge 2x: the 32x32 source made 64x64, its block averages kept
    window.enlarge(2)
    wait_until(app, lambda: not window.sampler.running)
    app.processEvents()
    window.grab().save(str(args.out / "studio-enlarge.png"))

    # 2. the Grow tab: four presses of Right, each half the model's width
    window.start_growing()
    view = window.grow_view
    for _ in range(4):
        view.side_buttons["right"].click()
        wait_until(app, lambda: window._grow_job is None and not window.sampler.running)
    app.processEvents()
    window.grab().save(str(args.out / "studio-grow.png"))

    # 3. Image > Colorize a grey picture: its luminance kept, the colours the model's
    grey = np.asarray(Image.open(source).convert("L").convert("RGB"))
    window.set_source_image(grey, caption="grey", suggest=True)
    window.tabs.setCurrentIndex(0)
    window.colorize()
    wait_until(app, lambda: not window.sampler.running)
    app.processEvents()
    window.grab().save(str(args.out / "studio-colorize.png"))
    window.close()


if __name__ == "__main__":
    main()
