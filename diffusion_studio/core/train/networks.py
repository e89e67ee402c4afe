"""What a training run trains: the network of a preset (a UNet2DModel, or the noise-aware
classifier), its starting weights, its noise schedule, and whether a step of it fits in memory."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import UNet2DModel

from diffusion_studio.core.classifier import NoiseClassifier, small_classifier_config
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import (
    TRAINING_FACTOR,
    activation_bytes,
    format_bytes,
    memory_budget,
)
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.core.train.config import CLASSIFIER_PRESETS, UNET_PRESETS, TrainConfig
from diffusion_studio.core.train.data import TrainingData


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
