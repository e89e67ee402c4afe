"""The freedesktop entry: it names what the app sets, and its installer writes it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_studio.ui.app import DESKTOP_FILE, WM_CLASS

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path)
    return parser["Desktop Entry"]


def test_the_entry_matches_the_app() -> None:
    desktop = entry(PACKAGING / f"{DESKTOP_FILE}.desktop")
    assert desktop["StartupWMClass"] == WM_CLASS  # X11 groups the window under the entry
    assert desktop["Icon"] == DESKTOP_FILE
    assert desktop["Exec"].split()[0] == "diffusion-studio"
    assert desktop["Type"] == "Application"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop only")
def test_the_installer_writes_the_entry_and_icon(tmp_path) -> None:
    exe = shutil.which("diffusion-studio", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("diffusion-studio is not installed beside this python")
    path = os.pathsep.join([str(Path(exe).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "PATH": path}
    subprocess.run(
        ["bash", str(PACKAGING / "install-desktop-entry.sh")],
        env=env,
        check=True,
        capture_output=True,
    )
    desktop = entry(tmp_path / "applications" / f"{DESKTOP_FILE}.desktop")
    assert desktop["Exec"] == f"{exe} %F"
    icon = tmp_path / "icons" / "hicolor" / "256x256" / "apps" / f"{DESKTOP_FILE}.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
