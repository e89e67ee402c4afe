"""Diffusion Studio: a desktop studio for pixel-space diffusion models."""

import os

# Read at import time by huggingface_hub: the studio works offline and never asks a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
# Read when torch loads OpenMP: its threads sleep as soon as they run out of work, instead of
# spinning first, so the window's thread gets a core at once while the model runs on the CPU
# (benchmarks/gui_responsiveness.py: shorter longest pauses, no slower), and a second job
# beside a run is not slowed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
