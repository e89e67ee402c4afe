"""Seam visibility of the two ways to grow a picture: sequential passes (each window an
inpainting of its own) against MultiDiffusion (the whole canvas at once, the windows'
predictions averaged).

Each picture of resources/samples is extended to the right by half the model's size four
times (32x32 to 96x32 on the embedded model), by both ways, from the same seeds. A seam is a
pair of horizontal neighbours that lie on the two sides of a pass boundary (the picture's
edge, or where one pass's new pixels meet the next's: the same columns for both ways); its
visibility is the mean absolute difference of such pairs over that of the neighbours inside
one pass's pixels. 1 is a seam that cannot be told from the texture; higher is visible.

    python scripts/measure_outpaint.py --seeds 2 --steps 25 --jump-n-sample 5 \\
        --out docs/outpaint-seams.png
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"


def seam_visibility(image: np.ndarray, made_by: np.ndarray) -> tuple[float, float]:
    """(mean |difference| of horizontal neighbours across pass boundaries, inside a pass's
    new pixels), over the channels, on an image (H, W, C) and its map of passes (H, W)."""
    diff = np.abs(np.diff(image.astype(float), axis=1)).mean(axis=2)
    left, right = made_by[:, :-1], made_by[:, 1:]
    across = left != right
    inside = (left == right) & (left >= 0)
    return float(diff[across].mean()), float(diff[inside].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per picture (default 2)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--jump-n-sample", type=int, default=5)
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--out", type=Path, help="every panorama, the two ways side by side")
    args = parser.parse_args()

    from diffusion_studio.core.canvas import Growth, fit_picture, joined
    from diffusion_studio.core.export import labelled_grid
    from diffusion_studio.core.image_class import suggest_class
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.outpaint import Outpaint, outpaint
    from diffusion_studio.core.request import default_request

    model = load_model(None)
    info = model.info
    growths = joined((Growth("extend", 0.5, "right"),) * args.passes)  # one MultiDiffusion run
    rows, labels, sums = [], [], {"passes": [], "multidiffusion": []}
    seconds = dict.fromkeys(sums, 0.0)
    for path in sorted(SAMPLES.glob("*.png")):
        picture, _ = fit_picture(path, info)
        label = suggest_class(picture, info).label
        for seed in range(args.seeds):
            request = default_request(len(info.class_names), info.default_class, info.null_class,
                                      num_inference_steps=args.steps, seed=seed,
                                      jump_n_sample=args.jump_n_sample)  # fmt: skip
            request = dataclasses.replace(request, class_label=label)
            done = {}
            for method in sums:
                started = time.perf_counter()
                done[method] = outpaint(model, Outpaint(request, info, picture, growths, method))
                seconds[method] += time.perf_counter() - started
            made_by = done["passes"].made_by  # the boundaries of the passes, for both ways
            for method, result in done.items():
                sums[method].append(seam_visibility(result.image, made_by))
            rows.append([done[m].image for m in sums])
            labels.append(f"{path.stem} {seed}")
            ratios = ", ".join(f"{m} {sums[m][-1][0] / sums[m][-1][1]:.2f}" for m in sums)
            print(f"{path.stem} seed {seed}: {ratios}", flush=True)
    print(
        f"\n{len(rows)} panoramas of {args.passes} passes, {args.steps} DDIM steps, "
        f"jump_n_sample {args.jump_n_sample}; seam visibility, across / inside a pass:"
    )
    for method, values in sums.items():
        across, inside = np.mean([v[0] for v in values]), np.mean([v[1] for v in values])
        ratios = [a / b for a, b in values]
        print(f"  {method:<15} across {across:6.2f}  inside {inside:6.2f}  ratio "
              f"{np.mean(ratios):.2f} (median {np.median(ratios):.2f})  "
              f"{seconds[method]:.0f} s")  # fmt: skip
    if args.out:  # a row per panorama, the two ways side by side, each seam ratio under it
        images = np.stack([image for row in rows for image in row])
        notes = [f"seams {a / b:.2f}" for k in range(len(rows)) for a, b in
                 (sums["passes"][k], sums["multidiffusion"][k])]  # fmt: skip
        grid = labelled_grid(images, 2, labels, ["passes", "MultiDiffusion"], notes)
        Image.fromarray(grid).save(args.out)


if __name__ == "__main__":
    main()
