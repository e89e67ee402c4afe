"""Whether the window can open here, asked before Qt is imported: a display to open it on,
and the system libraries of Qt's X11 platform (xcb). Without them Qt aborts the process
(exit 134) with a message that names libxcb-cursor0 whichever library is missing; this says
which are, and which packages bring them. No Qt here: it runs where Qt cannot load."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

HEADLESS = "the headless commands work without the window: diffusion-studio sample --help"
# Debian's and Ubuntu's package of a library, where it is not the soname's own spelling
PACKAGES = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libz.so.1": "zlib1g",
    "libgcc_s.so.1": "libgcc-s1",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_SONAME = re.compile(r"^(lib[\w+.-]*?)\.so\.(\d+)")
_CANNOT_OPEN = re.compile(r"(lib[\w+.-]*\.so(?:\.\d+)*): cannot open shared object file")


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why a window cannot open here (no display on Linux), or None."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    if env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display found (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot "
        f"open; {HEADLESS}"
    )


def uses_xcb(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will open the window through X11 (xcb): asked for, or the default on a
    Linux X11 session (a Wayland session takes Qt's Wayland platform first)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    asked = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if asked:
        return asked == "xcb"
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland"
    return bool(env.get("DISPLAY")) and not wayland


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin (libqxcb.so), or None where it is not found."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries `library` needs, directly or not, that the loader cannot find
    (ldd's "not found"); [] where ldd is absent or fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        listing = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_not_found(listing)


def parse_not_found(listing: str) -> list[str]:
    """The libraries an ldd listing says are not found, each once, in order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(listing)))


def package_of(soname: str) -> str | None:
    """The Debian/Ubuntu package of a system library (libxcb-icccm.so.4 -> libxcb-icccm4), or
    None for one of Qt's own (PySide6 ships those)."""
    if soname in PACKAGES:
        return PACKAGES[soname]
    if soname.startswith(("libQt6", "libpyside6", "libshiboken6", "libicu")):
        return None
    match = _SONAME.match(soname)
    if match is None:
        return None
    name, version = match.groups()
    return (name + ("-" if name[-1].isdigit() else "") + version).lower()


def libraries_problem(missing: Sequence[str], what: str) -> str:
    """One line: what cannot start, which libraries are missing, what to install."""
    packages = list(dict.fromkeys(p for p in map(package_of, missing) if p))
    own = [name for name in missing if package_of(name) is None]
    advice = []
    if packages:
        advice.append(f"on Debian or Ubuntu: sudo apt install {' '.join(packages)}")
    if own:
        advice.append("PySide6's own libraries are missing: pip install --force-reinstall "
                      "PySide6-Essentials")  # fmt: skip
    return (
        f"{what} needs system libraries that are missing ({', '.join(missing)}); "
        f"{'; '.join(advice)}; {HEADLESS}"
    )


def window_problem(
    environ: dict[str, str] | None = None,
    find_missing: Callable[[Path], list[str]] | None = None,
) -> str | None:
    """Why the window cannot open here, in one line, or None: no display, or the X11
    platform's libraries missing (checked only where Qt will use X11)."""
    problem = display_problem(environ)
    if problem or not uses_xcb(environ):
        return problem
    plugin = xcb_plugin()
    missing = (find_missing or missing_libraries)(plugin) if plugin is not None else []
    if not missing:
        return None
    return libraries_problem(missing, "the window cannot open: Qt's X11 platform (xcb)")


def import_problem(error: ImportError) -> str:
    """Qt failing to import (a library of Qt itself missing) as one line with the package."""
    missing = _CANNOT_OPEN.findall(str(error))
    if missing:
        return libraries_problem(missing, "the window cannot open: Qt")
    return f"the window cannot open: Qt does not load ({error}); {HEADLESS}"
