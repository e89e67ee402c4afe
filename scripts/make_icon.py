"""Draw the studio's icon: a disc coming out of noise, left to right, as a diffusion model draws.

python scripts/make_icon.py resources/icon.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

SIZE = 256


def icon(size: int = SIZE, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    # the clean picture: a warm disc with a highlight on a deep blue tile
    disc = np.hypot(x - 0.5, y - 0.5) < 0.33
    clean = np.empty((size, size, 3))
    clean[:] = (0.13, 0.17, 0.35)
    clean[disc] = (0.98, 0.72, 0.18)
    highlight = np.hypot(x - 0.42, y - 0.4) < 0.09
    clean[highlight & disc] = (1.0, 0.93, 0.62)
    # x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps, with ab going from noise (left) to clean (right)
    cell = size // 16
    noise = rng.standard_normal((size // cell, size // cell, 3)).repeat(cell, 0).repeat(cell, 1)
    alpha_bar = (0.08 + 0.92 * np.clip(x / 0.8, 0, 1) ** 1.5)[..., None]
    picture = np.sqrt(alpha_bar) * (2 * clean - 1) + np.sqrt(1 - alpha_bar) * 0.55 * noise
    rgb = np.clip((picture + 1) * 127.5, 0, 255).astype(np.uint8)
    # a rounded tile
    r = 0.18
    cx, cy = np.clip(x, r, 1 - r), np.clip(y, r, 1 - r)
    inside = np.hypot(x - cx, y - cy) <= r
    alpha = np.where(inside, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    args = parser.parse_args()
    icon().save(args.out, optimize=True)


if __name__ == "__main__":
    main()
