"""The headless engine: torch, numpy, pillow and diffusers. Never imports Qt."""
