"""Sampling over processes: `sample -n N --batches K` in one process against the same command
under `accelerate launch --num_processes P`, side by side in one run: the wall time of each
(launch, imports and model load included) and whether every image is the same, bit for bit.

    python benchmarks/processes.py                       # 2 CPU processes, 1 thread each
    python benchmarks/processes.py --processes 4 --gpu   # a machine of 4 GPUs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(command[:6])}... failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("-n", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--gpu", action="store_true", help="one GPU per process")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    flags = ["sample", "-n", str(args.n), "--batches", str(args.batches), "--steps",
             str(args.steps), "--quiet"]  # fmt: skip
    cpus = os.cpu_count() or 1
    alone_env = {**os.environ}
    spread_env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cpus // args.processes))}
    if not args.gpu:
        alone_env["CUDA_VISIBLE_DEVICES"] = spread_env["CUDA_VISIBLE_DEVICES"] = ""
    device = [] if args.gpu else ["--device", "cpu"]
    one = timed([sys.executable, "-m", "diffusion_studio", *flags, *device,
                 "--outdir", str(work / "one")], alone_env)  # fmt: skip
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", str(args.processes), "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    spread = timed([*launch, "-m", "diffusion_studio", *flags, *device,
                    "--outdir", str(work / "spread")], spread_env)  # fmt: skip
    names = sorted(p.name for p in (work / "one").glob("*.png"))
    same = sorted(p.name for p in (work / "spread").glob("*.png")) == names and all(
        np.array_equal(np.asarray(Image.open(work / "one" / n)),
                       np.asarray(Image.open(work / "spread" / n)))
        for n in names
    )  # fmt: skip
    images = args.n * args.batches
    print(f"{images} images ({args.batches} batches of {args.n}), {args.steps} steps, "
          f"{cpus} CPUs{', GPUs' if args.gpu else ''}")  # fmt: skip
    print(f"one process:           {one:6.1f} s")
    print(f"{args.processes} processes (accelerate): {spread:6.1f} s  ({one / spread:.2f}x)")
    print(f"the same {len(names)} images bit for bit: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
