"""DDPM training, Ho et al. 2020 Algorithm 1, with EMA weights, checkpoints and exact resume.

Everything random in a step (which images, timesteps, noise, label dropout, flips) is drawn from
a generator seeded by (seed, step), so a run resumed from a checkpoint sees the same data in
the same order as one that never stopped, and ends at the same weights. Several GPUs go through
Hugging Face Accelerate: `accelerate launch -m diffusion_studio train ...`.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DModel

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import make_grid, save_png
from diffusion_studio.core.files import exclusive_lock
from diffusion_studio.core.guidance import classifier_free_guidance
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.sampling import ddim_update, randn_like, sample
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.core.train import output  # hardware_description, looked up at call time
from diffusion_studio.core.train.checkpoints import (
    TrainState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from diffusion_studio.core.train.config import UNET_PRESETS, TrainConfig
from diffusion_studio.core.train.data import TrainingData, load_training_data, split_held_out
from diffusion_studio.core.train.networks import (
    build_network,
    check_training_memory,
    init_weights,
    make_schedule,
)
from diffusion_studio.core.train.output import check_output, held_out_accuracy, write_model

__all__ = ["UNET_PRESETS", "TrainConfig", "run_training"]


def learning_rate_factor(config: TrainConfig, step: int) -> float:
    """The share of --lr at `step`: a linear warm-up, then constant, or down to 0 at the last
    step along a line or a half cosine."""
    warmup = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    if config.lr_schedule == "constant" or step < config.warmup_steps:
        return warmup
    done = min(1.0, (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1))
    if config.lr_schedule == "linear":
        return 1.0 - done
    return 0.5 * (1.0 + math.cos(math.pi * done))


def batch_indices(step: int, batch_size: int, num_images: int, seed: int) -> np.ndarray:
    """The images of a step: a stream of per-epoch permutations, cut into batches.

    A pure function of the step, so that a resumed run reads the same data in the same order.
    """
    start = step * batch_size
    indices = []
    while len(indices) < batch_size:
        epoch, offset = divmod(start + len(indices), num_images)
        order = np.random.default_rng([seed, epoch]).permutation(num_images)
        indices.extend(order[offset : offset + batch_size - len(indices)])
    return np.asarray(indices)


def training_step(
    state: TrainState,
    config: TrainConfig,
    schedule: NoiseSchedule,
    data: TrainingData,
    images: torch.Tensor,
    backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward(),
    shard: tuple[int, int] = (0, 1),
) -> float:
    """Algorithm 1 for one batch: noise a batch to random timesteps, regress the noise (or v)."""
    process, processes = shard
    device = next(state.unet.parameters()).device
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + state.step)
    chosen = batch_indices(state.step, config.batch_size, len(images), config.seed)
    n = len(chosen)
    t = torch.randint(0, schedule.num_train_timesteps, (n,), generator=g)
    noise = torch.randn((n, *images.shape[1:]), generator=g)
    drop = torch.rand(n, generator=g) < config.p_uncond
    flip = torch.rand(n, generator=g) < (0.5 if config.hflip else 0.0)
    mine = slice(process, None, processes)  # each process takes its share of the global batch
    x_0 = images[chosen[mine]].to(device)
    x_0 = torch.where(flip[mine].view(-1, 1, 1, 1).to(device), x_0.flip(-1), x_0)
    t, noise = t[mine].to(device), noise[mine].to(device)
    labels = None
    if data.labels is not None:
        labels = torch.from_numpy(data.labels[chosen[mine]]).to(device)
        labels = torch.where(drop[mine].to(device), len(data.class_names), labels)
    x_t = schedule.q_sample(x_0, t, noise)
    if config.task == "classifier":  # p_phi(y | x_t, t), on the true labels
        labels = torch.from_numpy(data.labels[chosen[mine]]).to(device)
        loss = torch.nn.functional.cross_entropy(state.unet(x_t, t).float(), labels)
        return _optimise(state, loss, backward)
    if config.prediction_type == "epsilon":
        target = noise
    else:  # v = sqrt(ab) eps - sqrt(1 - ab) x_0 (Salimans & Ho 2022)
        ab = torch.as_tensor(schedule.alphas_cumprod, dtype=x_0.dtype, device=device)[t]
        ab = ab.view(-1, 1, 1, 1)
        target = ab.sqrt() * noise - (1 - ab).sqrt() * x_0
    prediction = state.unet(x_t, t, class_labels=labels).sample
    loss = torch.nn.functional.mse_loss(prediction.float(), target)
    return _optimise(state, loss, backward)


def _optimise(
    state: TrainState, loss: torch.Tensor, backward: Callable[[torch.Tensor], None]
) -> float:
    backward(loss)
    torch.nn.utils.clip_grad_norm_(state.unet.parameters(), 1.0)
    state.optimizer.step()
    state.lr_scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@torch.no_grad()
def update_ema(ema: UNet2DModel, unet: UNet2DModel, step: int, max_decay: float) -> None:
    """EMA of the weights, with diffusers' warm-up: decay = min(max, (1 + step) / (10 + step))."""
    decay = min(max_decay, (1 + step) / (10 + step))
    for ema_param, param in zip(ema.parameters(), unet.parameters()):
        ema_param.lerp_(param.detach(), 1 - decay)


def preview(
    ema: UNet2DModel,
    config: TrainConfig,
    data: TrainingData,
    per_class: int = 4,
    num_inference_steps: int = 25,
    guidance_scale: float = 3.0,
) -> np.ndarray:
    """A grid from the EMA weights: a row per class (or rows of unconditional samples)."""
    schedule = make_schedule(config)
    classes = len(data.class_names)
    n = per_class * max(classes, 1)
    device = next(ema.parameters()).device
    g = torch.Generator().manual_seed(config.seed)
    x_T = randn_like(
        torch.empty(n, data.channels, config.resolution, config.resolution, device=device), g
    )

    def network(x_t: torch.Tensor, t: int, labels: torch.Tensor | None) -> torch.Tensor:
        return ema(x_t, t, class_labels=labels).sample

    if classes:
        labels = torch.arange(classes, device=device).repeat_interleave(per_class)
        model_fn = classifier_free_guidance(network, labels, classes, guidance_scale)
    else:
        model_fn = lambda x_t, t: network(x_t, t, None)  # noqa: E731
    steps = sample(
        model_fn, x_T, schedule.timesteps(num_inference_steps), ddim_update(schedule, g, 0.0)
    )
    last = deque(steps, maxlen=1)[0]
    return make_grid(to_uint8(last.x_t), columns=per_class)


def run_training(
    config: TrainConfig,
    *,
    command: str = "",
    resume: bool = False,
    progress: bool = True,
    cpu: bool = False,
    force: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train (or resume) and write the model folder; returns its path.

    Everything that can be checked is checked before the first step (check_output, the data,
    the memory a step needs), and one run at a time holds the output (a lock beside it). A
    checkpoint is written every checkpoint_every steps and on Ctrl-C or SIGTERM (then
    KeyboardInterrupt is raised again). stop_after ends the run early after that many steps of
    this call, as a kill would, without writing the model (tests use it).
    """
    config.validate()
    overwrite = check_output(config, resume=resume, force=force)
    with exclusive_lock(config.output, "training"):
        return _train(config, command, resume, progress, cpu, overwrite, stop_after)


def _train(
    config: TrainConfig,
    command: str,
    resume: bool,
    progress: bool,
    cpu: bool,
    overwrite: bool,
    stop_after: int | None,
) -> Path:
    from accelerate import Accelerator
    from tqdm import tqdm

    accelerator = Accelerator(cpu=cpu)
    data = load_training_data(config.data, config.resolution)
    held_out = None
    if config.task == "classifier":
        if data.labels is None or len(data.class_names) < 2:
            raise InputError(
                f"{config.data} has no labels of two or more classes: a classifier learns them"
            )
        _check_noise_model(config, data)
        data, held_out = split_held_out(data, config.holdout, config.seed)
    check_training_memory(config, data, accelerator.device, accelerator.num_processes)
    images = data.as_tensor()
    unet = build_network(config, data.channels, len(data.class_names))
    if config.init_from and not resume:
        init_weights(unet, config)
    ema = build_network(config, data.channels, len(data.class_names)).requires_grad_(False)
    ema.load_state_dict(unet.state_dict())
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(config, step)
    )
    state = TrainState(0, unet, ema, optimizer, lr_scheduler, commands=[command] if command else [])
    if resume:
        found = latest_checkpoint(config.checkpoints)
        if found is None:
            raise InputError(f"--resume: no checkpoint in {config.checkpoints}")
        load_checkpoint(found, state, config, unet)
    state.unet, state.optimizer = accelerator.prepare(unet, optimizer)
    ema.to(accelerator.device)
    schedule = make_schedule(config)
    shard = (accelerator.process_index, accelerator.num_processes)
    last_step = config.steps if stop_after is None else min(config.steps, state.step + stop_after)
    bar = tqdm(
        total=config.steps,
        initial=state.step,
        unit="step",
        desc="train",
        disable=not (progress and accelerator.is_main_process),
    )
    smoothed = None
    started = time.monotonic() - state.wall_time
    stop_on_sigterm = _sigterm_as_interrupt()
    here = output.hardware_description()
    if state.step < last_step and here not in state.hardware:
        state.hardware.append(here)
    try:
        while state.step < last_step:
            with accelerator.autocast():
                loss = training_step(
                    state, config, schedule, data, images, accelerator.backward, shard
                )
            update_ema(ema, accelerator.unwrap_model(state.unet), state.step, config.ema_decay)
            state.step += 1
            state.wall_time = time.monotonic() - started
            smoothed = loss if smoothed is None else 0.98 * smoothed + 0.02 * loss
            bar.set_postfix(loss=f"{smoothed:.4f}", refresh=False)
            bar.update()
            if accelerator.is_main_process:
                _periodic(state, config, data, accelerator.unwrap_model(state.unet), held_out)
    except KeyboardInterrupt:
        if accelerator.is_main_process:
            path = save_checkpoint(state, config, accelerator.unwrap_model(state.unet))
            bar.write(
                f"interrupted at step {state.step}; checkpoint {path}; continue with --resume"
            )
        raise
    finally:
        bar.close()
        stop_on_sigterm()
    if state.step < config.steps:  # stopped early on purpose
        return config.checkpoints
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return Path(config.output)
    ema.to("cpu")
    return write_model(config, data, state, command, overwrite, held_out)


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Let a kill (SIGTERM) stop training as Ctrl-C does, with a checkpoint; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _check_noise_model(config: TrainConfig, data: TrainingData) -> None:
    """The classifier's images are the size and channels of the model whose noise it learns."""
    from diffusion_studio.core.model_files import load_model

    info = load_model(config.noise_of, device="cpu").info
    if (
        info.resolution != (config.resolution, config.resolution)
        or info.in_channels != data.channels
    ):
        raise InputError(
            f"--noise-of {info.name} makes {info.resolution[1]}x{info.resolution[0]} images of "
            f"{info.in_channels} channels; train the classifier at its size (--resolution)"
        )


def _periodic(
    state: TrainState,
    config: TrainConfig,
    data: TrainingData,
    unet: torch.nn.Module,
    held_out: TrainingData | None = None,
) -> None:
    if state.step % config.checkpoint_every == 0 or state.step == config.steps:
        save_checkpoint(state, config, unet)
    if state.step % config.sample_every == 0 and config.task == "classifier":
        if held_out is not None and len(held_out.images):
            accuracy = held_out_accuracy(state.ema, make_schedule(config), held_out)
            shown = ", ".join(f"t={t}: {a:.3f}" for t, a in accuracy.items())
            print(f"step {state.step}: held-out accuracy {shown}", flush=True)
    elif state.step % config.sample_every == 0:
        grid = preview(state.ema, config, data)
        save_png(config.checkpoints / f"samples-{state.step:07d}.png", grid, overwrite=True)
