"""A faster network call on a CPU? The embedded model's time per network call in float32,
bfloat16 autocast, channels_last, and both, at batch 1 and 8 (classifier-free guidance makes
each call a batch of 2N), the settings alternating call by call so that machine noise hits
them alike; medians, and each one's ratio to float32. With --fd, the Frechet distance of DDIM
50 images from the same seeds in each precision the studio runs, float32 and bfloat16
(`eval`'s classifier and statistics).

    python benchmarks/cpu_precision.py
    python benchmarks/cpu_precision.py --fd -n 256
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

SETTINGS = {  # name -> (bfloat16 autocast, channels_last)
    "float32": (False, False),
    "bf16 autocast": (True, False),
    "channels_last": (False, True),
    "bf16 + channels_last": (True, True),
}


def network(model, bf16: bool, channels_last: bool):
    unet = model.unet.to(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )

    def call(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16
                    else contextlib.nullcontext())  # fmt: skip
        with torch.inference_mode(), autocast:
            return unet(x, t, class_labels=labels).sample.float()

    return call


def time_calls(model, batch: int, rounds: int) -> dict[str, float]:
    size = model.info.resolution
    x = torch.randn(2 * batch, model.info.in_channels, *size)
    t = torch.full((2 * batch,), 500)
    labels = torch.zeros(2 * batch, dtype=torch.long)
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for bf16, last in SETTINGS.values():  # warm-up
        network(model, bf16, last)(x, t, labels)
    for _ in range(rounds):
        for name, (bf16, last) in SETTINGS.items():
            call = network(model, bf16, last)
            started = time.perf_counter()
            call(x, t, labels)
            times[name].append(time.perf_counter() - started)
    model.unet.to(memory_format=torch.contiguous_format)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--fd", action="store_true", help="also the FD of DDIM 50 images")
    parser.add_argument("-n", type=int, default=256, help="images per setting for --fd")
    args = parser.parse_args()
    from diffusion_studio.core.model import cpu_has_bfloat16
    from diffusion_studio.core.model_files import load_model

    model = load_model(None, device="cpu")
    print(f"bfloat16 in this CPU's hardware: {'yes' if cpu_has_bfloat16() else 'no'}; "
          f"--precision auto runs in {model.info.precision}")  # fmt: skip
    print(f"{model.info.name} on the CPU, {torch.get_num_threads()} threads; ms per network "
          "call (guided: a batch of 2N), median, and the ratio to float32")  # fmt: skip
    for batch in (1, 8):
        medians = time_calls(model, batch, args.rounds)
        base = medians["float32"]
        for name, seconds in medians.items():
            print(f"  batch {batch:<2} {name:<22} {seconds * 1e3:7.2f} ms  {seconds / base:5.2f}")
    if args.fd:
        fd(model, args.n)


def fd(model, count: int) -> None:
    """The Frechet distance of DDIM 50 images in each precision the studio runs (float32 and
    bfloat16 autocast, the request's precision), from the same seeds."""
    import dataclasses

    from diffusion_studio.core.request import PRECISIONS, default_request
    from diffusion_studio.core.train.evaluate import load_eval_classifier, score
    from diffusion_studio.core.train.samples import generate_images

    classifier, card, real = load_eval_classifier()
    info = model.info
    request = default_request(len(info.class_names), info.default_class, info.null_class,
                              num_inference_steps=50)  # fmt: skip
    print(
        f"DDIM 50, {count} images from the same seeds in the data's class shares, guidance 3; "
        "FD, class accuracy, and the mean pixel difference to float32's images (0 to 255):"
    )
    base = None
    for precision in PRECISIONS:
        images, labels = generate_images(model, dataclasses.replace(request, precision=precision),
                                         count, 32, class_counts=card.class_counts)  # fmt: skip
        result = score(classifier, images, labels, real)
        base = images if base is None else base
        levels = float((images - base).abs().mean()) * 127.5
        print(f"  {precision:<22} FD {result.frechet_distance:.3f}  accuracy "
              f"{result.class_accuracy:.3f}  pixels {levels:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
