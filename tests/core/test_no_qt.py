"""The engine never imports Qt: it must run headless, on machines without a display."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import diffusion_studio.core

CORE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(diffusion_studio.core.__path__, "diffusion_studio.core.")
)


def test_core_imports_with_qt_blocked() -> None:
    code = (
        "import sys\n"
        "blocked = ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'shiboken6', 'diffusion_studio.ui')\n"
        "for name in blocked:\n"
        "    sys.modules[name] = None  # any import of these now raises ImportError\n"
        f"import {', '.join(CORE_MODULES)}\n"
        "import diffusion_studio.cli\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(CORE_MODULES) >= 9
