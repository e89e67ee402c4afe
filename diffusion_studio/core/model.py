"""A loaded diffusion model: diffusers' UNet2DModel, its noise schedule and what the studio
knows of it (ModelInfo), on one device; the adapter to the samplers' model callable.

Model folders are read and written in core/model_files.py, the one boundary for files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import UNet2DModel
from diffusers.models.embeddings import TimestepEmbedding, Timesteps

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.guidance import ModelFn, classifier_free_guidance
from diffusion_studio.core.info import Layout, ModelInfo, find_class
from diffusion_studio.core.limits import MAX_CLASSES
from diffusion_studio.core.schedule import NoiseSchedule

STUDIO_FILE = "diffusion_studio.json"
STUDIO_UNET_KEYS = ("attention_heads", "timestep_channels", "timestep_scale")
"""Keys of config.json that UNet2DModel has none for, applied by apply_studio_options: folders
with them (converted ADM-128, ADM-512, IDDPM's) need the studio to load right."""
SUPPORTED_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA
MAX_TEXT = 10_000  # characters of a name, a licence or a description in the studio JSON


@dataclass(eq=False)
class DiffusionModel:
    """A loaded network, its noise schedule and its info, on one device."""

    unet: UNet2DModel
    schedule: NoiseSchedule
    info: ModelInfo
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_unet(
        cls,
        unet: UNet2DModel,
        schedule: NoiseSchedule,
        studio: dict[str, Any] | None = None,
        *,
        path: str = "",
        layout: Layout = "flat",
        device: torch.device | None = None,
        weights_hash: str = "",
    ) -> DiffusionModel:
        """A model from a network in memory; `studio` as the JSON beside the weights."""
        studio = studio or {}
        class_names, null_class = _class_names(unet, studio)
        size = unet.config.sample_size
        info = ModelInfo(
            name=_text(studio, "name", 200) or "model",
            path=path,
            layout=layout,
            resolution=(size, size) if isinstance(size, int) else (int(size[0]), int(size[1])),
            in_channels=unet.config.in_channels,
            out_channels=unet.config.out_channels,
            parameters=sum(p.numel() for p in unet.parameters()),
            prediction_type=schedule.prediction_type,
            beta_schedule=schedule.beta_schedule if not schedule.trained_betas else "trained",
            num_train_timesteps=schedule.num_train_timesteps,
            variance_type=schedule.variance_type,
            timestep_spacing=schedule.timestep_spacing,
            class_names=class_names,
            null_class=null_class,
            default_class=_default_class(class_names, studio),
            description=_text(studio, "description"),
            license=_text(studio, "license"),
            data=_text(studio, "data"),
            weights_hash=weights_hash,
        )
        learned = 2 * info.in_channels if schedule.learns_variance else info.in_channels
        if info.in_channels not in SUPPORTED_CHANNELS or info.out_channels != learned:
            variance = "learns its variance" if schedule.learns_variance else "has a fixed variance"
            raise InputError(
                f"{info.name} takes {info.in_channels} channels and outputs {info.out_channels}, "
                f"but its schedule {variance} (variance_type {schedule.variance_type}): a model "
                "of 1, 3 or 4 channels outputs as many, or twice as many when it learns its "
                "variance (learned_range)"
            )
        device = device or torch.device("cpu")
        info = dataclasses.replace(info, precision=default_precision(device))
        return cls(unet.eval().requires_grad_(False).to(device), schedule, info, device)

    def to(self, device: torch.device) -> DiffusionModel:
        """This model on another device, as a new object: the weights are copied there, and
        this one is left as it is (nothing that holds it sees its device change)."""
        unet = build_unet(dict(self.unet.config))
        weights = {k: v.detach().to(device, copy=True) for k, v in self.unet.state_dict().items()}
        unet.load_state_dict(weights, assign=True)
        info = dataclasses.replace(self.info, precision=default_precision(device))
        unet = unet.eval().requires_grad_(False)
        return dataclasses.replace(self, unet=unet, info=info, device=device)

    def class_index(self, name_or_index: str | int) -> int:
        """A class given by name (case-insensitive) or index, checked against the model."""
        if not self.info.class_names:
            raise InputError(f"{self.info.name} is not class-conditional; leave the class out")
        return find_class(self.info.class_names, name_or_index)

    def model_fn(
        self,
        class_label: int | None,
        guidance_scale: float,
        batch_size: int,
        precision: str | None = None,
    ) -> ModelFn:
        """The sampler's callable: the UNet on this device, with classifier-free guidance, in
        `precision` (None: the device's, info.precision).

        class_label None samples unconditionally (the null class) when the model is conditional.
        Outputs are float32 under bfloat16 autocast too: the sampler math stays in float32.
        """
        info = self.info
        forward = self._network(precision or info.precision)
        if not info.conditional:
            return lambda x_t, t: forward(x_t, t, None)
        if class_label is None or guidance_scale == 0.0:
            if info.null_class is None:
                raise InputError(f"{info.name} has no null class: choose a class")
            labels = torch.full((batch_size,), info.null_class, device=self.device)
            return lambda x_t, t: forward(x_t, t, labels)
        labels = torch.full((batch_size,), class_label, device=self.device)
        if guidance_scale == 1.0:
            return lambda x_t, t: forward(x_t, t, labels)
        if info.null_class is None:
            raise InputError(f"{info.name} was trained without a null class, so guidance must be 1")
        return classifier_free_guidance(forward, labels, info.null_class, guidance_scale)

    def compile(self) -> None:
        """torch.compile the network, for static shapes: each new batch size costs a compile
        (a minute or two on a CPU), then every call runs faster (about 1.5x on a CPU).

        Dynamo's default of 8 compiles per function would fall back to the slow eager network
        part-way through an eval, whose class shares make up to two batch sizes per class and
        guidance scale: 64 leaves room for them."""
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self.unet = torch.compile(self.unet, dynamic=False)

    def check_precision(self, precision: str | None) -> None:
        """InputError for a precision this model's device cannot run."""
        if precision == "bfloat16" and not bfloat16_runs_on(self.device):
            raise InputError(f"bfloat16 does not run on {self.device}: choose float32")

    def _network(self, precision: str):
        """The network as (x_t, t, class_labels) -> output, in float32 or under bfloat16
        autocast (its output cast back to float32)."""
        self.check_precision(precision)
        if precision != "bfloat16":
            return self._forward
        device_type = self.device.type

        def forward(x_t: torch.Tensor, t: int, class_labels: torch.Tensor | None) -> torch.Tensor:
            with torch.autocast(device_type, dtype=torch.bfloat16):
                return self._forward(x_t, t, class_labels).float()

        return forward

    def _forward(
        self, x_t: torch.Tensor, t: int, class_labels: torch.Tensor | None
    ) -> torch.Tensor:
        # t as a tensor (what diffusers makes of an int anyway), so a compiled network does not
        # specialise on its value and recompile at every step
        timestep = torch.tensor(t, dtype=torch.long, device=x_t.device)
        return self.unet(x_t, timestep, class_labels=class_labels).sample


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 itself (AVX512-BF16 or AMX), where bfloat16
    autocast is faster; elsewhere it is emulated, and slower than float32."""
    cpu = torch.cpu
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


def default_precision(device: torch.device) -> str:
    """What a request that leaves its precision open runs in on `device`: bfloat16 on a CPU
    that has it in hardware (a network call 0.6x as long at the same FD, README), float32
    elsewhere (bfloat16 on a GPU is not measured yet)."""
    return "bfloat16" if device.type == "cpu" and cpu_has_bfloat16() else "float32"


def bfloat16_runs_on(device: torch.device) -> bool:
    """bfloat16 autocast works on any CPU (emulated where it is not in hardware) and on a CUDA
    GPU that has it (Ampere and later)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def build_unet(config: dict[str, Any]) -> UNet2DModel:
    """A UNet2DModel of a config, the studio's keys applied (on the meta device: no memory)."""
    plain = {k: v for k, v in config.items() if k not in STUDIO_UNET_KEYS}
    with torch.device("meta"):
        unet = UNet2DModel.from_config(plain)
        apply_studio_options(unet, config)
    return unet


class ScaledTimesteps(torch.nn.Module):
    """The timestep projection of a network trained on t * scale (improved-diffusion's
    rescale_timesteps: 1000 / T, so IDDPM's T = 4000 networks saw t / 4)."""

    def __init__(self, projection: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.projection, self.scale = projection, scale

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.projection(timesteps.float() * self.scale)


def apply_studio_options(unet: UNet2DModel, config: dict[str, Any]) -> None:
    """What config.json's studio keys say, which UNet2DModel cannot: a fixed count of heads at
    every attention level; a timestep sinusoid of its own width; a scale of the timesteps."""
    heads = config.get("attention_heads")
    if heads is not None:
        for module in unet.modules():
            if module.__class__.__name__ == "Attention":
                inner = module.to_q.out_features
                if inner % heads:
                    raise InputError(f"attention_heads {heads} does not divide {inner} channels")
                module.heads = heads
                module.scale = (inner // heads) ** -0.5
    width = config.get("timestep_channels")
    if width is not None:
        dim = unet.time_embedding.linear_1.out_features
        unet.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        unet.time_embedding = TimestepEmbedding(width, dim)
    scale = config.get("timestep_scale")
    if scale is not None:
        unet.time_proj = ScaledTimesteps(unet.time_proj, scale)
    if any(config.get(k) is not None for k in STUDIO_UNET_KEYS):
        unet.register_to_config(**{k: config[k] for k in STUDIO_UNET_KEYS if k in config})


def pick_device(name: str | None = None) -> torch.device:
    """CUDA, then MPS, then CPU; or the device named ("cpu", "cuda", "cuda:1", "mps")."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was asked for, but this machine has no CUDA device for torch")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"there is no {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("MPS was asked for, but it is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name!r} is not supported; use auto, cpu, cuda or mps")
    return device


def available_devices() -> list[str]:
    """The devices this machine can run on, best first."""
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


def _text(studio: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str:
    value = studio.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InputError(f"{key} must be a text of at most {limit:,} characters")
    return value


def _class_names(unet: UNet2DModel, studio: dict[str, Any]) -> tuple[tuple[str, ...], int | None]:
    """The class names and the null class (for guidance), checked against the network."""
    num_embeds = unet.config.num_class_embeds
    if not num_embeds or unet.config.class_embed_type is not None:
        return (), None
    names = studio.get("class_names", [])
    if (
        not isinstance(names, list)
        or len(names) > MAX_CLASSES
        or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names)
    ):
        raise InputError(
            f"class_names must be a list of up to {MAX_CLASSES:,} names of 1 to 200 characters"
        )
    if not names:
        return tuple(f"class {i}" for i in range(num_embeds)), None
    if len(names) not in (num_embeds, num_embeds - 1):
        raise InputError(
            f"class_names lists {len(names)} classes but the network has {num_embeds} embeddings"
        )
    null_class = studio.get("null_class", num_embeds - 1 if len(names) == num_embeds - 1 else None)
    if null_class is not None and (
        isinstance(null_class, bool)
        or not isinstance(null_class, int)
        or not 0 <= null_class < num_embeds
    ):
        raise InputError(
            f"null_class must be an embedding index from 0 to {num_embeds - 1}, got {null_class!r}"
        )
    return tuple(names), null_class


def _default_class(names: tuple[str, ...], studio: dict[str, Any]) -> int:
    """The index of the JSON's "default_class" (a class name), else the first class."""
    name = studio.get("default_class")
    if name is None or not names:
        return 0
    if not isinstance(name, str) or name not in names:
        raise InputError(f"default_class {name!r} is not one of its class_names")
    return names.index(name)
