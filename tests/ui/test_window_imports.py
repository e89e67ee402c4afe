"""The window draws itself without torch: its modules import neither torch nor diffusers,
which come with the first model, loaded off the GUI thread once the window is up."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "diffusers"):
            raise ImportError("the window imported " + name)
sys.meta_path.insert(0, Block())
import diffusion_studio.ui.app, diffusion_studio.ui.main_window
print("ok")
"""


def test_the_window_s_modules_import_neither_torch_nor_diffusers() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
