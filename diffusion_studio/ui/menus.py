"""The window's menus: everything that has a button has an entry, most with a shortcut."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QTabWidget

from diffusion_studio.core.masks import PRESETS
from diffusion_studio.core.resources import sample_images

Keys = QKeySequence.StandardKey


class MenuHost(Protocol):
    """What the menus act on: the studio's main window, as far as they use it."""

    canvas: Any
    canvas_panel: Any
    panel: Any
    sampler: Any
    outputs: Any
    tabs: QTabWidget

    def menuBar(self) -> QMenuBar: ...
    def open_image(self) -> None: ...
    def load_source(self, path: Any) -> bool: ...
    def paste_image(self) -> None: ...
    def clear_source(self) -> bool: ...
    def open_model(self) -> None: ...

    def open_classifier(self) -> None: ...
    def import_checkpoint(self) -> None: ...
    def import_mask(self, invert: bool = False) -> None: ...
    def export_mask(self, invert: bool = False) -> None: ...
    def export(self, selected_only: bool) -> None: ...
    def set_saving(self, on: bool) -> None: ...
    def choose_output_folder(self) -> None: ...
    def close(self) -> bool: ...
    def use_result_as_source(self) -> None: ...
    def run(self) -> None: ...
    def about(self) -> None: ...
    def show_help(self, page: str) -> None: ...
    def enlarge(self, factor: int) -> None: ...
    def colorize(self) -> None: ...
    def start_growing(self) -> None: ...


@dataclass(frozen=True)
class Actions:
    """The entries whose state follows the window's (enabled or not)."""

    run: QAction
    cancel: QAction
    undo: QAction
    redo: QAction
    export_selected: QAction
    export_all: QAction
    use_source: QAction


def build_menus(w: MenuHost) -> Actions:
    """File, Edit, Mask, Run, View and Help; returns the entries whose state changes."""
    bar = w.menuBar()

    def add(menu: QMenu, text: str, slot: Callable[[], object], keys=None) -> QAction:
        action = QAction(text, bar)
        if keys is not None:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    file = bar.addMenu("&File")
    add(file, "Open image...", w.open_image, Keys.Open)
    samples = file.addMenu("Sample images")
    for path in sample_images():
        add(samples, path.stem, lambda _=False, p=path: w.load_source(p))
    add(file, "Paste image", w.paste_image, Keys.Paste)
    add(file, "Close image", w.clear_source)
    file.addSeparator()
    add(file, "Open model folder...", w.open_model, "Ctrl+Shift+O")
    add(file, "Import checkpoint (guided-/improved-diffusion .pt)...", w.import_checkpoint)
    add(file, "Open classifier folder (classifier guidance)...", w.open_classifier)
    file.addSeparator()
    add(file, "Import mask (white = generate)...", lambda: w.import_mask(False))
    add(file, "Import RePaint mask (white = keep, inverted)...", lambda: w.import_mask(True))
    add(file, "Export mask (white = generate)...", lambda: w.export_mask(False))
    add(file, "Export RePaint mask (white = keep)...", lambda: w.export_mask(True))
    file.addSeparator()
    export_selected = add(file, "Export selected...", lambda: w.export(True), "Ctrl+E")
    export_all = add(file, "Export all...", lambda: w.export(False), "Ctrl+Shift+E")
    if w.outputs is not None:
        saving = add(file, "Save every result to the output folder", lambda: None)
        saving.setCheckable(True)
        saving.setChecked(w.outputs.enabled)
        saving.toggled.connect(w.set_saving)
        add(file, "Output folder...", w.choose_output_folder)
    file.addSeparator()
    add(file, "Quit", w.close, Keys.Quit)

    edit = bar.addMenu("&Edit")
    undo = add(edit, "Undo", w.canvas.undo, Keys.Undo)
    redo = add(edit, "Redo", w.canvas.redo, "Ctrl+Shift+Z")
    edit.addSeparator()
    use_source = add(edit, "Use result as source", w.use_result_as_source, "Ctrl+U")

    canvas, tools = w.canvas, w.canvas_panel
    mask = bar.addMenu("&Mask")
    add(mask, "Brush", lambda: tools.set_eraser(False), "B")
    add(mask, "Eraser", lambda: tools.set_eraser(True), "E")
    add(mask, "Bigger brush", lambda: canvas.set_brush_size(canvas.brush_size + 1), "]")
    add(mask, "Smaller brush", lambda: canvas.set_brush_size(canvas.brush_size - 1), "[")
    mask.addSeparator()
    add(mask, "Fill (generate everything)", canvas.fill, "Ctrl+Shift+F")
    add(mask, "Clear (keep everything)", canvas.clear_mask, "Ctrl+Shift+C")
    add(mask, "Invert", canvas.invert, "Ctrl+I")
    presets = mask.addMenu("Presets")
    for name, spec in PRESETS.items():
        add(presets, spec.label, lambda _=False, p=name: tools.apply_preset(p))
    add(mask, "Re-roll random preset", tools.reroll_preset, "Ctrl+R")

    run_menu = bar.addMenu("&Run")
    run = add(run_menu, "Run", w.run)
    run.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    cancel = add(run_menu, "Cancel", w.sampler.cancel, "Esc")
    add(run_menu, "New random seed", w.panel.roll_seed, "Ctrl+D")

    image = bar.addMenu("&Image")
    add(image, "Enlarge 2x (super-resolution, past the model's size)", lambda: w.enlarge(2))
    add(image, "Enlarge 4x", lambda: w.enlarge(4))
    add(image, "Colorize (the luminance kept)", w.colorize)
    add(image, "Grow (outpaint past the border)...", w.start_growing)

    view = bar.addMenu("&View")
    add(view, "Zoom in", lambda: canvas.set_zoom(canvas.zoom * 1.25), Keys.ZoomIn)
    add(view, "Zoom out", lambda: canvas.set_zoom(canvas.zoom / 1.25), Keys.ZoomOut)
    add(view, "Fit", lambda: canvas.set_zoom(1.0), "Ctrl+0")
    add(view, "Model's view of the canvas", tools.model_view.toggle, "Ctrl+M")
    add(view, "Studio", lambda: w.tabs.setCurrentIndex(0), "Ctrl+1")
    add(view, "Forward process", lambda: w.tabs.setCurrentIndex(1), "Ctrl+2")
    add(view, "Compare", lambda: w.tabs.setCurrentIndex(2), "Ctrl+3")
    add(view, "Grow", lambda: w.tabs.setCurrentIndex(3), "Ctrl+4")

    help_menu = bar.addMenu("&Help")
    add(help_menu, "What this run does", lambda: w.show_help("run"), Keys.HelpContents)
    add(help_menu, "Keyboard shortcuts", lambda: w.show_help("shortcuts"), "Ctrl+/")
    help_menu.addSeparator()
    add(help_menu, "README", lambda: w.show_help("readme"))
    add(help_menu, "Model card", lambda: w.show_help("card"))
    help_menu.addSeparator()
    add(help_menu, "About Diffusion Studio", w.about)
    return Actions(run, cancel, undo, redo, export_selected, export_all, use_source)
