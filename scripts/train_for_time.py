"""Train for a time budget: a short probe times a step, then one run takes as many steps as fit.

    python scripts/train_for_time.py emoji64.npz --out emoji64 --seconds 420 -- \
        --preset medium --resolution 64 --prediction-type v_prediction --batch-size 128 --lr 2e-4

Everything after `--` goes to `diffusion-studio train` as it is, for the probe and the run
alike. The run's learning rate falls to 0 along a cosine at its last step, so the budget must
be known before it starts: hence the probe (its own folder beside --out, `--probe-steps` steps;
the step time is its training loop's wall time, start-up excluded, over its steps). A job for a
machine lent for a fixed time, such as a GPU: the default model's 64x64 recipe is the example.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def train(data: str, out: Path, steps: int, passed: list[str]) -> dict:
    command = [sys.executable, "-m", "diffusion_studio", "train", data, "--out", str(out)]
    command += ["--steps", str(steps), *passed]
    done = subprocess.run(command)
    if done.returncode:  # train said why
        sys.exit(done.returncode)
    return json.loads((out / "diffusion_studio.json").read_text())["training"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--out", required=True, type=Path, help="the model folder to write")
    parser.add_argument("--seconds", type=float, required=True, help="the run's training time")
    parser.add_argument("--probe-steps", type=int, default=300)
    mine, passed = sys.argv[1:], []
    if "--" in mine:
        cut = mine.index("--")
        mine, passed = mine[:cut], mine[cut + 1 :]
    args = parser.parse_args(mine)
    if {a.split("=")[0] for a in passed} & {"--steps", "--lr-schedule"}:  # --steps=N too
        parser.error("--steps and --lr-schedule are this script's to set")
    probe = train(
        args.data,
        args.out.with_name(args.out.name + "-probe"),
        args.probe_steps,
        [*passed, "--sample-every", "1000000000"],
    )
    per_step = max(probe["wall_time_s"], 0.1) / probe["steps"]  # the JSON keeps tenths of a second
    steps = max(1, int(args.seconds / per_step))
    print(f"probe: {per_step * 1000:.1f} ms a step; the run: {steps} steps", flush=True)
    run = train(args.data, args.out, steps, [*passed, "--lr-schedule", "cosine"])
    print(f"trained {run['steps']} steps in {run['wall_time_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
