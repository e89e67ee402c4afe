"""Train the evaluation classifier that `diffusion-studio eval` measures samples with.

    python scripts/train_eval_classifier.py emoji32.npz --out resources/classifier

Writes classifier.safetensors (weights, and the real data's feature mean and covariance) and
classifier.json (class names, held-out accuracy, the real-vs-real Frechet floor).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from diffusion_studio.core.data import load_training_data
from diffusion_studio.core.evaluate import (
    EvalClassifierCard,
    held_out_split,
    real_statistics,
    save_eval_classifier,
    train_eval_classifier,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="an .npz with images, labels and categories")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=float, default=0.15)
    parser.add_argument("--force", action="store_true", help="replace an existing classifier")
    args = parser.parse_args()
    data = load_training_data(args.data, resolution=32)
    started = time.monotonic()
    model, accuracy = train_eval_classifier(
        data, epochs=args.epochs, seed=args.seed, held_out=args.held_out
    )
    real, floor = real_statistics(model, data, seed=args.seed)
    train, held_out = held_out_split(data.labels, args.held_out, args.seed)
    card = EvalClassifierCard(
        data.class_names,
        round(accuracy, 4),
        round(floor, 4),
        len(held_out),
        len(train),
        args.epochs,
        args.seed,
    )
    save_eval_classifier(model, card, real, args.out, overwrite=args.force)
    print(
        f"held-out accuracy {accuracy:.4f} on {len(held_out)} images; real-vs-real floor "
        f"{floor:.3f}; {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
