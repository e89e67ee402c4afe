"""What a perfect model would score in `eval`: real images, drawn as eval draws samples.

    python scripts/eval_floor.py emoji32.npz

For each n, the mean Frechet distance (10 draws) in the evaluation classifier's features of n
real images against all of them, drawn (a) in the data's class shares, as eval draws samples
now, and (b) spread evenly over the classes, as it did before: with unevenly sized classes
(b) is far from the data however good each image is.
"""

from __future__ import annotations

import argparse

from diffusion_studio.core.train.data import load_training_data
from diffusion_studio.core.train.evaluate import floors_by_size, load_eval_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the .npz the evaluation classifier's statistics are of")
    parser.add_argument("--sizes", default="128,256,512,1024")
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    classifier, _, real = load_eval_classifier()
    data = load_training_data(args.data, resolution=32)
    sizes = [int(s) for s in args.sizes.split(",")]
    shares, even = (
        dict(floors_by_size(classifier, data, real, sizes, args.draws, even=even))
        for even in (False, True)
    )
    print(f"{'n':>6} {'data shares':>12} {'even spread':>12}")
    for size in sizes:
        nan = float("nan")
        print(f"{size:>6} {shares.get(size, nan):>12.3f} {even.get(size, nan):>12.3f}")


if __name__ == "__main__":
    main()
