"""The bundle's entry point: the `diffusion-studio` command, window and CLI alike."""

import os
import sys

# A windowed build (no console) has no stdout or stderr; progress bars and messages need one.
for name in ("stdout", "stderr"):
    if getattr(sys, name) is None:
        setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 (open for the process's life)

from diffusion_studio.cli import main  # noqa: E402

sys.exit(main())
