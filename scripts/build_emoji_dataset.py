"""Rebuild the emoji training data: emoji32.npz and emoji64.npz.

    python scripts/build_emoji_dataset.py --out-dir DIR [--work-dir DIR]
    python scripts/build_emoji_dataset.py --out-dir DIR --from-tarballs GOOGLE.tgz TWITTER.tgz

Made from the npm packages emoji-datasource-google@16.0.0 and emoji-datasource-twitter@16.0.0:
the 64x64 PNG of each base emoji (no skin-tone variants) listed in package/emoji.json, in that
file's order, category "Component" left out; Google's images first, then Twitter's. Each image
is composited on white (64x64 as drawn) and Lanczos-downscaled to 32x32. Arrays: images
(N, S, S, 3) uint8, labels (N,) int64 into categories (sorted), styles, names (short names).

Licences: Google / Noto Emoji images, Apache License 2.0 (googlefonts/noto-emoji); Twitter /
Twemoji graphics, CC BY 4.0 (jdecked/twemoji); emoji-datasource metadata (emoji.json), MIT,
Copyright (c) 2013 Cal Henderson.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

VERSION = "16.0.0"
STYLES = ("google", "twitter")
WHITE = (255, 255, 255, 255)


def npm_pack(style: str, work_dir: Path) -> Path:
    """Download emoji-datasource-<style>@VERSION's tarball into work_dir; return its path."""
    if shutil.which("npm") is None:
        sys.exit("error: npm not found on PATH (install Node.js, or pass --from-tarballs)")
    spec = f"emoji-datasource-{style}@{VERSION}"
    # --json makes npm report the file name it wrote, rather than us guessing it.
    done = subprocess.run(["npm", "pack", spec, "--json"], cwd=work_dir, capture_output=True)
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        sys.exit(f"error: npm pack {spec} failed: {last}")
    return work_dir / json.loads(done.stdout)[0]["filename"]


def read_package(tarball: Path, style: str) -> tuple[list[dict], dict[str, bytes]]:
    """emoji.json and the 64px PNGs of one package, read straight from the tarball.

    Only regular files under package/ are read and nothing is written to disk, so a hostile
    archive cannot escape the work dir through links or "../" paths.
    """
    prefix = f"package/img/{style}/64/"
    files: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            name = member.name
            safe = member.isfile() and name.startswith("package/") and ".." not in name.split("/")
            wanted = name == "package/emoji.json" or (
                name.startswith(prefix) and name.endswith(".png")
            )
            data = tar.extractfile(member) if safe and wanted else None
            if data is not None:
                files[name] = data.read()
    if "package/emoji.json" not in files:
        sys.exit(f"error: {tarball} has no package/emoji.json")
    meta = json.loads(files.pop("package/emoji.json"))
    return meta, {name[len(prefix) :]: data for name, data in files.items()}


def on_white(png: bytes) -> Image.Image:
    """The PNG (RGBA, LA or palette with transparency) composited over opaque white, as RGB."""
    image = Image.open(io.BytesIO(png), formats=["PNG"]).convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", image.size, WHITE), image).convert("RGB")


def build(tarballs: dict[str, Path], out_dir: Path) -> None:
    images: dict[int, list[np.ndarray]] = {64: [], 32: []}
    styles: list[str] = []
    names: list[str] = []
    cats: list[str] = []
    for style, tarball in tarballs.items():
        meta, pngs = read_package(tarball, style)
        # emoji.json lists base emoji only (skin tones are nested under "skin_variations").
        # "Component" holds the bare skin-tone swatches and hair parts, not emoji of their own.
        for emoji in meta:
            if emoji["category"] == "Component":
                continue
            if not emoji[f"has_img_{style}"] or emoji["image"] not in pngs:
                print(f"skipped {style} {emoji['short_name']}: no image", file=sys.stderr)
                continue
            rgb = on_white(pngs[emoji["image"]])
            if rgb.size != (64, 64):  # the 64x64 set is kept as drawn, never resampled
                sys.exit(f"error: {style} {emoji['image']} is {rgb.size}, not 64x64")
            images[64].append(np.asarray(rgb))
            # Downscale the composited RGB, not the RGBA: resampling straight alpha would
            # bleed the (arbitrary) colour of transparent pixels into the edges.
            images[32].append(np.asarray(rgb.resize((32, 32), Image.Resampling.LANCZOS)))
            styles.append(style)
            names.append(emoji["short_name"])
            cats.append(emoji["category"])
    categories = sorted(set(cats))
    labels = np.array([categories.index(c) for c in cats], dtype=np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    for size, stack in images.items():
        path = out_dir / f"emoji{size}.npz"
        np.savez_compressed(
            path,
            images=np.stack(stack),
            labels=labels,
            categories=np.array(categories),  # <U strings: loadable with allow_pickle=False
            styles=np.array(styles),
            names=np.array(names),
        )
        print(f"wrote {path}: {len(stack)} images, {size}x{size}")
    print(", ".join(f"{s}: {n}" for s, n in Counter(styles).items()))
    counts = np.bincount(labels, minlength=len(categories))
    for name, count in zip(categories, counts):
        print(f"  {count:5d}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument(
        "--work-dir", type=Path, help="keep the npm tarballs here (default: a temporary dir)"
    )
    parser.add_argument(
        "--from-tarballs",
        nargs=2,
        type=Path,
        metavar=("GOOGLE_TGZ", "TWITTER_TGZ"),
        help="use these npm pack tarballs instead of downloading",
    )
    args = parser.parse_args()
    if args.from_tarballs:
        build(dict(zip(STYLES, args.from_tarballs)), args.out_dir)
        return
    # The tarballs are ~136 MB together: by default they go to a temp dir that is removed,
    # so that running this from the repository root leaves nothing behind in it.
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        build({style: npm_pack(style, work_dir) for style in STYLES}, args.out_dir)


if __name__ == "__main__":
    main()
