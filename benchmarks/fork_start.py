"""What a fork costs: from the state its parent's trajectory kept, or by replaying the parent up
to its step. Both give the same image; this measures the time of each and the memory the kept
states take, on the embedded model (or --model), one image.

    python benchmarks/fork_start.py [--model FOLDER] [--steps 100] [--at 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--at", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from diffusion_studio.core.job import Job
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.request import SampleRequest
    from diffusion_studio.core.run import execute

    model = load_model(args.model)
    info = model.info
    request = SampleRequest("ddpm", args.steps, seed=0, class_label=0 if info.class_names else None,
                            guidance_scale=3.0 if info.null_class is not None else 1.0)  # fmt: skip
    parent = Job.prepare(request, info)
    started = time.perf_counter()
    result = execute(model, parent)
    whole = time.perf_counter() - started
    kept = [f.start for f in result.trajectory.frames if f.start is not None]
    kept_bytes = sum(s.nbytes for s in kept)
    frame_bytes = sum(f.x_t.nbytes + f.x0_pred.nbytes for f in result.trajectory.frames)
    left = dataclasses.replace(request, num_inference_steps=args.steps - args.at)
    child = parent.forked(left, args.at)
    at = result.trajectory.frames[args.at - 1].start
    times: dict[str, list[float]] = {"kept state": [], "replay": []}
    for _ in range(args.repeat):
        for name, start in (("kept state", at), ("replay", None)):
            started = time.perf_counter()
            images = execute(model, child, at=start).images
            times[name].append(time.perf_counter() - started)
            assert np.array_equal(images, result.images), "a fork must end on its parent's image"
    print(
        f"{info.name}, DDPM {args.steps} steps, fork at step {args.at}; the parent: {whole:.2f} s"
    )
    print(f"kept states: {len(kept)}, {kept_bytes / 2**20:.2f} MB "
          f"(the frames themselves: {frame_bytes / 2**20:.2f} MB)")  # fmt: skip
    for name, values in times.items():
        print(f"fork from {name}: median {statistics.median(values):.2f} s of {args.repeat}")
    ratio = statistics.median(times["replay"]) / statistics.median(times["kept state"])
    print(f"replay / kept state: {ratio:.2f}x")


if __name__ == "__main__":
    main()
