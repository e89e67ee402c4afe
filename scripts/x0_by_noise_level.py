"""How well a model predicts x0 from real images noised to several t (a check of training).

    python scripts/x0_by_noise_level.py MODEL_FOLDER ../shared/datasets/emoji32.npz

Prints, per t, the mean squared error of the predicted x0 (clipped to [-1, 1]) and its mean
brightness beside the data's. A model whose error at high t stays far above the data's
variance draws the wrong layout and colours in the first sampling steps.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from diffusion_studio.core.model_files import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data", help="an .npz with images (N, H, W, 3) uint8 and labels")
    parser.add_argument("-n", type=int, default=64)
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    unet, schedule = model.unet, model.schedule
    data = np.load(args.data)
    chosen = np.random.default_rng(0).choice(len(data["images"]), args.n, replace=False)
    x_0 = torch.from_numpy(data["images"][chosen]).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.from_numpy(data["labels"][chosen]).long() if "labels" in data else None
    g = torch.Generator().manual_seed(0)
    print(f"data: variance {x_0.var():.3f}, mean {x_0.mean():.3f}")
    with torch.inference_mode():
        for t in (50, 200, 500, 800, 950):
            noise = torch.randn(x_0.shape, generator=g)
            timesteps = torch.full((len(x_0),), t)
            x_t = schedule.q_sample(x_0, timesteps, noise)
            out = unet(x_t, timesteps, class_labels=labels).sample
            x0_pred = schedule.predict(out, x_t, t)[0].clamp(-1, 1)
            error = ((x0_pred - x_0) ** 2).mean()
            print(f"t = {t:4d}: x0 MSE {error:.4f}, mean {x0_pred.mean():.3f}")


if __name__ == "__main__":
    main()
