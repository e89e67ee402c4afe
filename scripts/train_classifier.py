"""Train the evaluation classifier that `diffusion-studio eval` measures samples with.

    python scripts/train_classifier.py emoji32.npz --out resources/classifier

Writes classifier.safetensors (weights, and the real data's feature mean and covariance) and
classifier.json (class names, held-out accuracy, the data's images per class, the real-vs-real
Frechet floors). With --keep-weights the classifier already in --out is kept and only what it
says of the data is computed again.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from diffusion_studio.core.train.data import load_training_data
from diffusion_studio.core.train.evaluate import (
    EvalClassifierCard,
    floors_by_size,
    held_out_split,
    load_eval_classifier,
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
    parser.add_argument(
        "--keep-weights",
        action="store_true",
        help="keep the classifier in --out; recompute its real statistics and floors",
    )
    args = parser.parse_args()
    data = load_training_data(args.data, resolution=32)
    started = time.monotonic()
    if args.keep_weights:
        model, card, _ = load_eval_classifier(args.out)
        accuracy = card.held_out_accuracy
    else:
        model, accuracy = train_eval_classifier(
            data, epochs=args.epochs, seed=args.seed, held_out=args.held_out
        )
        train, held_out = held_out_split(data.labels, args.held_out, args.seed)
        card = EvalClassifierCard(
            data.class_names, round(accuracy, 4), 0.0, len(held_out), len(train), args.epochs,
            args.seed,
        )  # fmt: skip
    real, floor = real_statistics(model, data, seed=card.seed)
    card = dataclasses.replace(
        card,
        real_floor=round(floor, 4),
        class_counts=tuple(np.bincount(data.labels, minlength=len(data.class_names)).tolist()),
        floors_by_size=floors_by_size(model, data, real, seed=card.seed),
    )
    save_eval_classifier(model, card, real, args.out, overwrite=args.force or args.keep_weights)
    print(
        f"held-out accuracy {accuracy:.4f} on {card.held_out_images} images; real-vs-real floor "
        f"{floor:.3f} (halves), {dict(card.floors_by_size)} (n against all); "
        f"{time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
