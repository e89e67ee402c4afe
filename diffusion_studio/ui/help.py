"""The Help menu's pages: what this run does (its update rule), the keyboard shortcuts, the
README and the model card, each in a window of its own beside the studio."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMenuBar,
    QMessageBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.explain import explain
from diffusion_studio.core.resources import readme_path

GESTURES = (
    ("Paint the mask (what is generated)", "left drag on the canvas"),
    ("Erase the mask (what is kept)", "right drag, or the Eraser with a left drag"),
    ("Brush size", "mouse wheel over the canvas, or [ and ]"),
    ("Zoom the canvas", "Ctrl + mouse wheel"),
    ("Change a field with the wheel", "click it first: the wheel scrolls past fields"),
)


MAX_PAGE_BYTES = 1024 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024


class PageText(QTextBrowser):
    """A QTextBrowser that loads a picture only from a regular file of modest size inside the
    page's folder: a model card of a person's folder cannot make it read /dev/zero or a FIFO,
    and no link is followed (nothing is opened from here)."""

    def __init__(self, folder: Path | None) -> None:
        super().__init__(openLinks=False, openExternalLinks=False)
        self.folder = folder.resolve() if folder is not None else None

    def loadResource(self, kind: int, name: QUrl) -> object:
        # An empty QImage, not None, for a refused resource: on None, QTextDocument reads the
        # file itself (a card's ![x](/dev/zero) took all memory).
        if self.folder is None or name.scheme() not in ("", "file"):
            return QImage()
        path = (self.folder / (name.toLocalFile() or name.path())).resolve()
        try:
            ok = path.is_relative_to(self.folder) and path.is_file()
            ok = ok and path.stat().st_size <= MAX_PICTURE_BYTES
        except OSError:
            ok = False
        return QImage(str(path)) if ok else QImage()


class HelpPage(QDialog):
    """A page of Markdown in a window of its own, non-modal."""

    def __init__(self, title: str, markdown: str, parent: QWidget | None = None,
                 folder: Path | None = None) -> None:  # fmt: skip
        super().__init__(parent, objectName=f"help-{title.lower().replace(' ', '-')}")
        self.setWindowTitle(title)
        self.text = PageText(folder)  # the README's and the card's pictures, beside them
        self.text.setMarkdown(markdown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(760, 620)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def markdown(self) -> str:
        return self.text.toMarkdown()


def shortcuts_markdown(bar: QMenuBar) -> str:
    """Every menu entry that has a key, by menu, then the mouse's gestures."""
    lines = ["## Keyboard shortcuts", ""]
    for menu_action in bar.actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        rows = _rows(menu, menu_action.text().replace("&", ""))
        if rows:
            lines += [
                f"**{menu_action.text().replace('&', '')}**",
                "",
                "| Entry | Keys |",
                "|---|---|",
            ]
            lines += [f"| {text} | {keys} |" for text, keys in rows]
            lines.append("")
    lines += ["**Mouse**", "", "| Action | Mouse |", "|---|---|"]
    lines += [f"| {what} | {how} |" for what, how in GESTURES]
    return "\n".join(lines) + "\n"


def _rows(menu, path: str) -> list[tuple[str, str]]:
    rows = []
    for action in menu.actions():
        if action.menu() is not None:
            rows += _rows(action.menu(), f"{path} > {action.text()}")
            continue
        keys = [k.toString() for k in action.shortcuts() if not k.isEmpty()]
        if keys and not action.isSeparator():
            rows.append((action.text().replace("&", ""), " or ".join(keys)))
    return rows


def file_markdown(path: Path, missing: str) -> str:
    """A Markdown file's text (a regular file, its first megabyte), or `missing` where there
    is none to read."""
    try:
        if not path.is_file():
            return missing
        with open(path, "rb") as f:
            return f.read(MAX_PAGE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return missing


def show_page(parent: QWidget, title: str, markdown: str, folder: Path | None = None) -> HelpPage:
    """Open the page (the one already open of that title is replaced and raised)."""
    for page in parent.findChildren(HelpPage):
        if page.windowTitle() == title:
            page.close()
    page = HelpPage(title, markdown, parent, folder)
    page.show()
    page.raise_()
    return page


def open_help(window, page: str) -> HelpPage | None:
    """Help's pages of the studio `window`: "run" (what this run does, for the panel's
    settings), "shortcuts", "readme" and "card" (the model's README.md)."""
    model = window.model
    if page == "shortcuts":
        return show_page(window, "Keyboard shortcuts", shortcuts_markdown(window.menuBar()))
    if page == "readme":
        readme = readme_path()
        text = file_markdown(readme, "The README is not in this installation.")
        return show_page(window, "README", text, readme.parent)
    if model is None:
        window.show_error("Open a model folder first: this page describes the model's run.")
        return None
    if page == "card":
        folder = Path(model.info.path) if model.info.path else None
        missing = f"{model.info.name} has no model card (README.md in its folder)."
        text = file_markdown(folder / "README.md", missing) if folder else missing
        return show_page(window, f"Model card: {model.info.name}", text, folder)
    request = window.panel.request()
    class_name = window.panel.class_box.currentText() if request.class_label is not None else None
    text = explain(
        request,
        model.schedule,
        model.info.prediction_type,
        inpaint=window.state.inpainting,
        class_name=class_name,
        guided=model.info.null_class is not None,
    )
    return show_page(window, "What this run does", text)


def show_about(window, app_name: str) -> None:
    """Help > About: the version, what the studio does, the versions of torch and diffusers
    (loaded with the model by then) and the licences."""
    import diffusers
    import torch

    from diffusion_studio import __version__

    device = window.model.device if window.model else "no model"
    QMessageBox.about(
        window,
        f"About {app_name}",
        f"<h3>{app_name} {__version__}</h3>"
        "<p>A studio for pixel-space diffusion models: DDPM, DDIM and DPM-Solver++, "
        "classifier-free and classifier guidance, RePaint and DDNM inpainting, "
        "super-resolution, colorization and outpainting, live.</p>"
        f"<p>torch {torch.__version__}, diffusers {diffusers.__version__}; device {device}</p>"
        "<p>Code: MIT. Emoji data and the embedded model: Noto Emoji (Apache 2.0) and "
        "Twemoji (CC BY 4.0); see NOTICE.</p>",
    )
