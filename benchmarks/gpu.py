"""The studio's engine against diffusers' pipelines on a CUDA GPU, in one run: the embedded
default model and a full-width ADM-256-shaped UNet (guided-diffusion's 256x256 network, 550 M
parameters, random weights), DDIM and DPM-Solver++(2M), batch 1 and 64, fp32 / fp16 / bf16
(autocast, both sides alike), with and without torch.compile. Each cell is the median of a few
runs, the two sides alternating; images per second and the engine / pipeline ratio (below 1:
the engine is faster), and the largest pixel difference of their images (the same seeds,
leading spacing, where diffusers' DDIM steps right): 0 or 1 where both compute the same;
DPM-Solver++ differs where the model's config clips x_0, which the engine does and diffusers'
DPM-Solver does not.

    python benchmarks/gpu.py                      # the whole table (about 10 minutes on an H100)
    python benchmarks/gpu.py --models default --compile off --precisions fp32,bf16
    python benchmarks/gpu.py --quick --device cpu  # a smoke run of the script itself

The pipelines: DDIMPipeline (eta 0, clipping as the engine) and DDPMPipeline with
DPMSolverMultistepScheduler (algorithm dpmsolver++, order 2), each network call given the
class label the engine gives (a class-conditional network, guidance 1: the same work).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque
from contextlib import nullcontext
from functools import partial

import numpy as np
import torch
from diffusers import (
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DPMSolverMultistepScheduler,
)

from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.job import Job
from diffusion_studio.core.model import DiffusionModel, build_unet
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def adm256(device: torch.device, quick: bool) -> DiffusionModel:
    """guided-diffusion's 256x256 unconditional network's shape (model_channels 256, channel_mult
    1,1,2,2,4,4, 2 res blocks, attention at 32, 16 and 8, 64-channel heads, resblock up/down,
    scale-shift norm) with fixed variance, random weights; --quick: a 32x32 one of width 32."""
    from diffusion_studio.core.checkpoint_shapes import Architecture
    from diffusion_studio.core.openai_configs import scheduler_config, unet_config
    from diffusion_studio.core.openai_flags import flags_for
    from diffusion_studio.core.schedule import NoiseSchedule

    flags = flags_for("adm-imagenet256-uncond")
    mult, width, attention = (1, 1, 2, 2, 4, 4), 256, frozenset({3, 4, 5})
    if quick:
        flags = flags_for("adm-imagenet256-uncond", {"image_size": 32})
        mult, width, attention = (1, 2), 32, frozenset({1})
    arch = Architecture(3, 3, width, mult, 2, attention, None, True, True)
    unet = build_unet(unet_config(arch, flags)).to_empty(device=device)
    generator = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.normal_(0.0, 0.02, generator=generator)
    schedule = NoiseSchedule.from_config(scheduler_config(flags, arch))
    return DiffusionModel.from_unet(unet, schedule, {"name": "adm256-shaped"}, device=device)


class Labelled(torch.nn.Module):
    """The network as a pipeline calls it (no class labels), given the engine's class."""

    def __init__(self, unet: torch.nn.Module, config, label: int | None) -> None:
        super().__init__()
        self.net, self.config, self.label = unet, config, label

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(self, sample, timestep, *args, **kwargs):
        if self.label is not None:
            kwargs["class_labels"] = torch.full((len(sample),), self.label, device=sample.device)
        return self.net(sample, timestep, *args, **kwargs)


def engine_run(model, sampler, steps, batch, label) -> np.ndarray:
    extra = {"eta": 0.0} if sampler == "ddim" else {}
    request = SampleRequest(sampler=sampler, num_inference_steps=steps, seed=0, batch_size=batch,
                            timestep_spacing="leading", class_label=label, guidance_scale=1.0,
                            **extra)  # fmt: skip
    last = deque(run(model, Job.prepare(request, model.info)), maxlen=1)[0]
    return to_uint8(last.x_t)


def pipeline_for(model: DiffusionModel, unet, sampler: str):
    config = {**model.schedule.to_config(), "timestep_spacing": "leading"}
    label = model.info.default_class if model.info.conditional else None
    labelled = Labelled(unet, model.unet.config, label)
    if sampler == "ddim":
        pipe = DDIMPipeline(unet=labelled, scheduler=DDIMScheduler.from_config(config))
    else:
        scheduler = DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2
        )
        pipe = DDPMPipeline(unet=labelled, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_run(pipe, sampler, steps, batch, device) -> np.ndarray:
    generators = [torch.Generator(device).manual_seed(i) for i in range(batch)]
    extra = {"eta": 0.0, "use_clipped_model_output": True} if sampler == "ddim" else {}
    with torch.inference_mode():
        images = pipe(batch_size=batch, generator=generators, num_inference_steps=steps,
                      output_type="np", **extra).images  # fmt: skip
    return np.round(images * 255).astype(np.uint8)


def autocast(dtype, device: torch.device, function, *args) -> np.ndarray:
    """`function(*args)` under autocast to `dtype` (fp32: as it is)."""
    with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
        return function(*args)


def timed(function, device: torch.device) -> tuple[float, np.ndarray]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    images = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="default,adm256")
    parser.add_argument("--samplers", default="ddim:50,dpmpp_2m:20", help="NAME:STEPS,...")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--compile", default="off,on", help="off, on or off,on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small shapes, 3 steps, 1 repeat")
    args = parser.parse_args()
    device = torch.device(args.device)
    samplers = [
        (name, int(steps)) for name, steps in (s.split(":") for s in args.samplers.split(","))
    ]
    batches = [int(b) for b in args.batches.split(",")]
    repeats = args.repeats
    if args.quick:
        samplers, batches, repeats = [(name, 3) for name, _ in samplers], [1, 2], 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{name}, torch {torch.__version__}")
    print(f"{'model':<14}{'sampler':<13}{'batch':>5} {'prec':>5} {'compile':>7} "
          f"{'engine img/s':>12} {'pipeline img/s':>14} {'ratio':>6} {'max diff':>8}")  # fmt: skip
    for model_name in args.models.split(","):
        if model_name == "default":
            model = load_model(None, device=str(device))
        else:
            model = adm256(device, args.quick)
        eager = model.unet
        for compiled in args.compile.split(","):
            unet = eager
            if compiled == "on":
                torch._dynamo.config.recompile_limit = 64
                unet = torch.compile(eager, dynamic=False)
            model.unet = unet
            label = model.info.default_class if model.info.conditional else None
            for sampler, steps in samplers:
                pipe = pipeline_for(model, unet, sampler)
                for batch in batches:
                    for precision in args.precisions.split(","):
                        dtype = PRECISIONS[precision]
                        ours = partial(autocast, dtype, device, engine_run,
                                       model, sampler, steps, batch, label)  # fmt: skip
                        theirs = partial(autocast, dtype, device, pipeline_run,
                                         pipe, sampler, steps, batch, device)  # fmt: skip

                        seconds: dict[str, list[float]] = {"engine": [], "pipeline": []}
                        first = {"engine": timed(ours, device)[1],
                                 "pipeline": timed(theirs, device)[1]}  # warm-up  # fmt: skip
                        for repeat in range(repeats):
                            sides = [("engine", ours), ("pipeline", theirs)]
                            for side, function in sides[:: 1 if repeat % 2 else -1]:
                                seconds[side].append(timed(function, device)[0])
                        engine, pipeline = (statistics.median(seconds[s]) for s in seconds)
                        diff = np.abs(first["engine"].astype(int) - first["pipeline"]).max()
                        print(f"{model_name:<14}{f'{sampler} {steps}':<13}{batch:>5} "
                              f"{precision:>5} {compiled:>7} {batch / engine:>12.2f} "
                              f"{batch / pipeline:>14.2f} {engine / pipeline:>6.3f} {diff:>8}",
                              flush=True)  # fmt: skip
        model.unet = eager


if __name__ == "__main__":
    main()
