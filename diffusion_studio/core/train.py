"""DDPM training, Ho et al. 2020 Algorithm 1, with EMA weights, checkpoints and exact resume.

Everything random in a step (which images, timesteps, noise, label dropout, flips) is drawn from
a generator seeded by (seed, step), so a run resumed from a checkpoint sees the same data in
the same order as one that never stopped, and ends at the same weights. Several GPUs go through
Hugging Face Accelerate: `accelerate launch -m diffusion_studio train ...`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import UNet2DModel

from diffusion_studio.core.checkpoints import (
    TrainState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from diffusion_studio.core.classifier import NoiseClassifier, small_classifier_config
from diffusion_studio.core.data import TrainingData, load_training_data
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import make_grid, save_png
from diffusion_studio.core.files import check_apart, check_folder_target, exclusive_lock
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.limits import (
    TRAINING_FACTOR,
    activation_bytes,
    format_bytes,
    memory_budget,
)
from diffusion_studio.core.model import STUDIO_FILE
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.sampling import classifier_free_guidance, ddim_update, randn_like, sample
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.core.train_config import (
    ACCURACY_LEVELS,
    CLASSIFIER_PRESETS,
    UNET_PRESETS,
    TrainConfig,
)

__all__ = ["UNET_PRESETS", "TrainConfig", "run_training"]


def build_network(config: TrainConfig, channels: int, num_classes: int) -> torch.nn.Module:
    """The network the run trains: a UNet2DModel, or for the classifier task a NoiseClassifier
    of the preset's channels."""
    if config.task != "classifier":
        return build_unet(config, channels, num_classes)
    torch.manual_seed(config.seed)
    return NoiseClassifier(**classifier_network(config, channels, num_classes))


def classifier_network(config: TrainConfig, channels: int, num_classes: int) -> dict[str, Any]:
    """The NoiseClassifier config of a classifier preset (core/classifier.py's layout)."""
    blocks = CLASSIFIER_PRESETS[config.preset]
    head, groups = min(32, blocks[-1]), min(32, blocks[0] // 2)
    return {
        **small_classifier_config(config.resolution, channels, num_classes),
        "block_out_channels": list(blocks),
        "down_block_types": ["ResnetDownsampleBlock2D"] + ["AttnDownBlock2D"] * (len(blocks) - 1),
        "attention_head_dim": head,
        "pool_head_dim": head,
        "norm_num_groups": groups,
        "attn_norm_num_groups": groups,
    }


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


def build_unet(config: TrainConfig, channels: int, num_classes: int) -> UNet2DModel:
    """A UNet2DModel of the preset's size; with classes, one extra embedding: the null class."""
    block_out_channels, layers, attention = UNET_PRESETS[config.preset]
    levels = range(len(block_out_channels))
    torch.manual_seed(config.seed)
    return UNet2DModel(
        sample_size=config.resolution,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=block_out_channels,
        layers_per_block=layers,
        down_block_types=tuple(
            "AttnDownBlock2D" if i in attention else "DownBlock2D" for i in levels
        ),
        up_block_types=tuple(
            "AttnUpBlock2D" if len(block_out_channels) - 1 - i in attention else "UpBlock2D"
            for i in levels
        ),
        norm_num_groups=min(32, block_out_channels[0] // 2),
        attention_head_dim=None,
        num_class_embeds=num_classes + 1 if num_classes else None,
    )


def init_weights(unet: UNet2DModel, config: TrainConfig) -> None:
    """Start from the weights of the model folder config.init_from, which must have the shape
    this run builds. Its prediction type may differ: an epsilon model fine-tuned into
    v-prediction, as Stable Diffusion 2's v model was, keeps what it knows at low noise."""
    from diffusion_studio.core.model_files import load_model

    source = load_model(config.init_from, device="cpu").unet
    try:
        unet.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        detail = str(exc).splitlines()[0]
        raise InputError(
            f"--init {config.init_from}: its network is not the {config.preset} preset's shape "
            f"for this data ({detail})"
        ) from None


def check_training_memory(
    config: TrainConfig, data: TrainingData, device: torch.device, processes: int = 1
) -> None:
    """Refuse a run whose step (activations kept for backward) and data would not fit."""
    if config.task == "classifier":
        network = classifier_network(config, data.channels, max(len(data.class_names), 2))
    else:
        block_out_channels, _, attention = UNET_PRESETS[config.preset]
        network = {
            "block_out_channels": block_out_channels,
            "down_block_types": [
                "AttnDownBlock2D" if i in attention else "DownBlock2D"
                for i in range(len(block_out_channels))
            ],
            "attention_head_dim": None,
        }
    per_image = activation_bytes(network, config.resolution, config.resolution)
    batch = -(-config.batch_size // processes)
    step = TRAINING_FACTOR * per_image * batch
    pixels = len(data.images) * data.channels * config.resolution**2
    need = step + 4 * pixels  # and the data, as float32
    budget = memory_budget(device.type, device.index)
    if need > budget:
        raise InputError(
            f"a step of {batch} images of {config.resolution}x{config.resolution} and the data "
            f"need about {format_bytes(need)} on {device}, and {format_bytes(budget)} is free: "
            "lower --batch-size or --resolution"
        )


def make_schedule(config: TrainConfig) -> NoiseSchedule:
    if config.task == "classifier":  # the noise of the model it will guide
        from diffusion_studio.core.model_files import load_model

        return load_model(config.noise_of, device="cpu").schedule
    beta_schedule = "squaredcos_cap_v2" if config.beta_schedule == "cosine" else "linear"
    return NoiseSchedule.from_config(
        {
            "num_train_timesteps": config.num_train_timesteps,
            "beta_schedule": beta_schedule,
            "prediction_type": config.prediction_type,
            "clip_sample": True,
        }
    )


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
def held_out_accuracy(
    classifier: torch.nn.Module, schedule: NoiseSchedule, data: TrainingData, seed: int = 0
) -> dict[int, float]:
    """The classifier's accuracy on `data` at each of ACCURACY_LEVELS' timesteps, every image
    noised once per level with a fixed seed."""
    T = schedule.num_train_timesteps
    images, labels = data.as_tensor(), torch.from_numpy(data.labels)
    device = next(classifier.parameters()).device
    scores = {}
    for level in ACCURACY_LEVELS:
        t = round(level * (T - 1))
        g = torch.Generator().manual_seed(seed + t)
        right = 0
        for start in range(0, len(images), 256):
            x_0 = images[start : start + 256]
            noise = torch.randn(x_0.shape, generator=g)
            steps = torch.full((len(x_0),), t, dtype=torch.long)
            x_t = schedule.q_sample(x_0, steps, noise).to(device)
            guess = classifier(x_t, steps.to(device)).argmax(dim=1).cpu()
            right += int((guess == labels[start : start + 256]).sum())
        scores[t] = right / len(images)
    return scores


@torch.no_grad()
def update_ema(ema: UNet2DModel, unet: UNet2DModel, step: int, max_decay: float) -> None:
    """EMA of the weights, with diffusers' warm-up: decay = min(max, (1 + step) / (10 + step))."""
    decay = min(max_decay, (1 + step) / (10 + step))
    for ema_param, param in zip(ema.parameters(), unet.parameters()):
        ema_param.lerp_(param.detach(), 1 - decay)


def studio_metadata(
    config: TrainConfig, data: TrainingData, state: TrainState, command: str
) -> dict[str, Any]:
    """The studio JSON beside the model: what it knows, where from, and how it was made (and,
    for a run that started from another model's weights, that model's own training record,
    so that the whole lineage stays with the weights)."""
    training: dict[str, Any] = {
        "command": state.commands[0] if state.commands else command,
        "resumed_with": state.commands[1:],
        "steps": state.step,
        "wall_time_s": round(state.wall_time, 1),
        "hardware": "; ".join(state.hardware) or hardware_description(),
        "config": dataclasses.asdict(config),
    }
    studio: dict[str, Any] = {
        "name": config.name or Path(config.output).name,
        "class_names": list(data.class_names),
        "data": config.data_description or data.description,
        "license": config.license,
        "training": training,
    }
    earlier = _studio_of(Path(config.init_from)) if config.init_from else {}
    if isinstance(earlier.get("training"), dict):
        training["init_training"] = earlier["training"]
    same_classes = earlier.get("class_names") == studio["class_names"]
    if same_classes and isinstance(earlier.get("default_class"), str | int):
        studio["default_class"] = earlier["default_class"]  # the class the window opens on
    return studio


def _studio_of(folder: Path) -> dict[str, Any]:
    """The studio JSON of the model folder `folder` ({} when it has none readable)."""
    try:
        studio = json.loads((folder / STUDIO_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return studio if isinstance(studio, dict) else {}


def hardware_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def write_model(
    config: TrainConfig,
    data: TrainingData,
    state: TrainState,
    command: str,
    overwrite: bool = False,
    held_out: TrainingData | None = None,
) -> Path:
    """Save the EMA weights as the model: the flat diffusers layout plus the studio JSON (for
    a classifier, with its held-out accuracy by noise level)."""
    studio = studio_metadata(config, data, state, command)
    schedule = make_schedule(config)
    if config.task == "classifier" and held_out is not None and len(held_out.images):
        accuracy = held_out_accuracy(state.ema, schedule, held_out)
        studio["accuracy_by_timestep"] = {str(t): round(a, 4) for t, a in accuracy.items()}
        studio["held_out_images"] = len(held_out.images)
    return save_model(state.ema, schedule, config.output, studio=studio, overwrite=overwrite)


def split_held_out(
    data: TrainingData, share: float, seed: int
) -> tuple[TrainingData, TrainingData]:
    """(training, held-out): a seeded share of the images kept out of training."""
    order = np.random.default_rng([seed, 7]).permutation(len(data.images))
    cut = round(share * len(order))
    parts = []
    for chosen in (np.sort(order[cut:]), np.sort(order[:cut])):
        labels = None if data.labels is None else data.labels[chosen]
        parts.append(dataclasses.replace(data, images=data.images[chosen], labels=labels))
    return parts[0], parts[1]


def check_output(config: TrainConfig, *, resume: bool, force: bool) -> bool:
    """Refuse, before any work, an output or checkpoint folder that would put a person's files
    at risk; returns whether the finished model may replace an existing --out.

    --out may not be (or hold, or lie inside) the current folder, the data or the checkpoints.
    An existing --out is replaced only with `force`, or on --resume when a training run wrote
    it (continuing a run into its own folder), and then only if it is a model folder. A new
    run never writes into a checkpoint folder that holds another run's checkpoints (their
    rotation would delete them).
    """
    out, checkpoints = Path(config.output), config.checkpoints
    check_apart(out, {"training data": config.data, "checkpoint folder": checkpoints})
    check_apart(checkpoints, {"training data": config.data}, flag="--checkpoint-dir")
    exists = out.exists() or out.is_symlink()
    overwrite = force or (resume and _written_by_training(out))
    if exists:
        check_folder_target(out, overwrite=overwrite)
    if not resume and latest_checkpoint(checkpoints) is not None:
        raise InputError(
            f"{checkpoints} holds the checkpoints of another run: continue it with --resume, "
            "or give this run another --checkpoint-dir"
        )
    return exists


def _written_by_training(folder: Path) -> bool:
    """Whether `folder` is a model that this project's train command wrote."""
    try:
        studio = json.loads((folder / STUDIO_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(studio, dict) and isinstance(studio.get("training"), dict)


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
    if state.step < last_step and hardware_description() not in state.hardware:
        state.hardware.append(hardware_description())
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
