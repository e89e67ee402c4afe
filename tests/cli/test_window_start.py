"""`diffusion-studio` on a plain Linux: where Qt's X11 platform lacks system libraries, one
line names them and the packages to install (exit 2), instead of Qt's abort (exit 134)."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

from diffusion_studio.cli import main
from diffusion_studio.ui import display

LDD_LISTING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f46)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f46)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibEGL.so.1 => not found
"""


def test_an_ldd_listing_gives_the_missing_libraries_once() -> None:
    assert display.parse_not_found(LDD_LISTING) == [
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libEGL.so.1",
    ]


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
        ("libEGL.so.1", "libegl1"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
        ("libQt6XcbQpa.so.6", None),
    ],
)
def test_a_library_is_named_by_its_debian_package(soname, package) -> None:
    assert display.package_of(soname) == package


def x11_session(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")


def test_only_a_session_that_uses_x11_is_checked(monkeypatch) -> None:
    x11_session(monkeypatch)
    assert display.uses_xcb()
    for platform in ("offscreen", "wayland", "wayland;xcb"):
        monkeypatch.setenv("QT_QPA_PLATFORM", platform)
        assert not display.uses_xcb()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert display.uses_xcb()
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    assert not display.uses_xcb()


def test_the_window_is_not_tried_when_libraries_are_missing(monkeypatch, capsys) -> None:
    x11_session(monkeypatch)
    monkeypatch.setattr(display, "xcb_plugin", lambda: Path("libqxcb.so"))
    monkeypatch.setattr(
        display, "missing_libraries", lambda _: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    )
    never = types.ModuleType("diffusion_studio.ui.app")

    def run(files=()):
        raise AssertionError("the window was started")

    never.run = run
    monkeypatch.setitem(sys.modules, "diffusion_studio.ui.app", never)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in err


def test_qt_that_cannot_load_is_one_line_with_its_package(monkeypatch, capsys) -> None:
    x11_session(monkeypatch)
    monkeypatch.setattr(display, "missing_libraries", lambda _: [])
    monkeypatch.setitem(sys.modules, "diffusion_studio.ui.app", None)  # import fails
    monkeypatch.setattr(
        display,
        "import_problem",
        lambda exc, real=display.import_problem: real(
            ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
        ),
    )
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sudo apt install libegl1" in err


def pretend_missing(tmp_path: Path, renamed: dict[bytes, bytes]) -> Path:
    """A copy of PySide6's X11 plugin whose needed libraries in `renamed` are spelled as
    libraries no machine has (same length, so the file stays valid), beside Qt's own."""
    plugin = display.xcb_plugin()
    if plugin is None or shutil.which("ldd") is None:
        pytest.skip("PySide6's X11 plugin or ldd is not here")
    qt = tmp_path / "Qt"
    (qt / "plugins" / "platforms").mkdir(parents=True)
    (qt / "lib").symlink_to(plugin.parents[2] / "lib")
    data = plugin.read_bytes()
    for name, pretend in renamed.items():
        assert len(name) == len(pretend) and name + b"\0" in data
        data = data.replace(name + b"\0", pretend + b"\0")
    copy = qt / "plugins" / "platforms" / "libqxcb.so"
    copy.write_bytes(data)
    return copy


def test_a_library_pretended_missing_is_found_by_the_loader(tmp_path, monkeypatch, capsys):
    copy = pretend_missing(
        tmp_path,
        {
            b"libxcb-icccm.so.4": b"libxcb-icccm.so.9",
            b"libxcb-keysyms.so.1": b"libxcb-keysyms.so.9",
        },
    )
    missing = display.missing_libraries(copy)
    assert "libxcb-icccm.so.9" in missing and "libxcb-keysyms.so.9" in missing
    x11_session(monkeypatch)
    monkeypatch.setattr(display, "xcb_plugin", lambda: copy)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "libxcb-icccm9" in err and "libxcb-keysyms9" in err and err.count("\n") == 1
