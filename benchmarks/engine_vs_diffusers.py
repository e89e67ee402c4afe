"""DDIM through the studio's engine against diffusers' DDIMPipeline on the same UNet.

Both run 50 DDIM steps (eta 0, leading spacing, clipping as the model's config says) from the
same seeds, so they make the same images; runs alternate between the two so that machine noise
hits both alike, and the median of each side is compared. Time inside the network is measured
too: what is left is each loop's own cost (scheduler math, noise, bookkeeping), which the network
time hides from the total. The engine must cost no more than the pipeline: ratio <= 1.0.

With --precision auto or bfloat16 the engine runs its network under bfloat16 autocast (what
"auto" chooses on a CPU with bfloat16 instructions) and the pipeline as diffusers runs it, in
float32: the time a person saves by running the studio instead (the images then differ by a few
levels, as bfloat16's do).

    python benchmarks/engine_vs_diffusers.py              # batch 1 and 8, ~4M-parameter UNet
    python benchmarks/engine_vs_diffusers.py --precision auto --batches 8
    python benchmarks/engine_vs_diffusers.py --quick      # a smoke run with a tiny UNet
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque

import numpy as np
import torch
from diffusers import DDIMPipeline, DDIMScheduler, UNet2DModel

from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.job import Job
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run
from diffusion_studio.core.schedule import NoiseSchedule

PRECISION = "float32"  # the engine's network: main() sets it from --precision


def make_unet(channels: tuple[int, ...], size: int) -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=size,
        block_out_channels=channels,
        layers_per_block=2,
        down_block_types=("DownBlock2D",) * (len(channels) - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (len(channels) - 1),
        norm_num_groups=min(32, channels[0]),
    ).eval()


class NetworkClock:
    """Accumulates the time spent inside the UNet's forward, whoever calls it."""

    def __init__(self, unet: UNet2DModel) -> None:
        self.seconds = 0.0
        self._forward = unet.forward
        unet.forward = self  # nn.Module.__call__ looks forward up on the instance first

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._forward(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def engine_run(model: DiffusionModel, steps: int, batch: int) -> np.ndarray:
    request = SampleRequest(
        sampler="ddim",
        num_inference_steps=steps,
        eta=0.0,
        seed=0,
        batch_size=batch,
        timestep_spacing="leading",
        precision=PRECISION,
    )
    job = Job.prepare(request, model.info)
    last = deque(run(model, job), maxlen=1)[0]  # what a consumer keeps: the last step
    return to_uint8(last.x_t)


def pipeline_run(pipe: DDIMPipeline, steps: int, batch: int) -> np.ndarray:
    generators = [torch.Generator().manual_seed(i) for i in range(batch)]
    with torch.inference_mode():
        images = pipe(
            batch_size=batch,
            generator=generators,
            num_inference_steps=steps,
            eta=0.0,
            use_clipped_model_output=True,
            output_type="np",
        ).images
    return np.round(images * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny UNet, 5 steps, 1 repeat")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="the engine's (default float32, as the pipeline's)",
    )
    args = parser.parse_args()
    channels, size, steps, repeats = (64, 128, 128), 32, args.steps, args.repeats
    if args.quick:
        channels, size, steps, repeats = (8, 16), 16, 5, 1
    unet = make_unet(channels, size)
    schedule = NoiseSchedule.linear()
    model = DiffusionModel.from_unet(unet, schedule, {"name": "bench"})
    global PRECISION
    PRECISION = model.info.precision if args.precision == "auto" else args.precision
    pipe = DDIMPipeline(unet=unet, scheduler=DDIMScheduler.from_config(schedule.to_config()))
    pipe.set_progress_bar_config(disable=True)
    print(
        f"UNet {model.info.parameters / 1e6:.2f} M parameters, {size}x{size}, DDIM {steps} steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; engine in "
        f"{PRECISION}, pipeline in float32"
    )
    clock = NetworkClock(unet)
    print(
        f"{'batch':>5}  {'engine s':>9}  {'pipeline s':>10}  {'ratio':>6}  "
        f"{'engine loop ms/step':>19}  {'pipeline loop ms/step':>21}  {'ratio':>6}  max |diff|"
    )
    for batch in (int(b) for b in args.batches.split(",")):
        ours = engine_run(model, steps, batch)  # warm-up, and the images to compare
        theirs = pipeline_run(pipe, steps, batch)
        totals: dict[str, list[float]] = {"engine": [], "pipeline": []}
        loops: dict[str, list[float]] = {"engine": [], "pipeline": []}
        runs = [("engine", engine_run, model), ("pipeline", pipeline_run, pipe)]
        for repeat in range(repeats):
            for name, timed, target in runs[:: 1 if repeat % 2 else -1]:  # alternate who goes first
                clock.seconds = 0.0
                start = time.perf_counter()
                timed(target, steps, batch)
                total = time.perf_counter() - start
                totals[name].append(total)
                loops[name].append((total - clock.seconds) / steps * 1000)
        engine_s, pipeline_s = (statistics.median(totals[k]) for k in ("engine", "pipeline"))
        engine_ms, pipeline_ms = (statistics.median(loops[k]) for k in ("engine", "pipeline"))
        diff = int(np.abs(ours.astype(int) - theirs.astype(int)).max())
        print(
            f"{batch:>5}  {engine_s:>9.3f}  {pipeline_s:>10.3f}  {engine_s / pipeline_s:>6.3f}  "
            f"{engine_ms:>19.3f}  {pipeline_ms:>21.3f}  {engine_ms / pipeline_ms:>6.3f}  {diff}"
        )


if __name__ == "__main__":
    main()
