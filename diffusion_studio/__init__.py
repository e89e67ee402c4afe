"""Diffusion Studio: a desktop studio for pixel-space diffusion models."""

import os

# Read at import time by huggingface_hub: the studio works offline and never asks a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

__version__ = "0.1.0"
