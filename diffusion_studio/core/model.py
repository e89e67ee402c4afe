"""Diffusion models on disk: diffusers' UNet2DModel in its two folder layouts, read offline.

(a) flat, as the google/ddpm-* repositories: config.json + diffusion_pytorch_model.safetensors
    (or .bin) + scheduler_config.json;
(b) pipeline: model_index.json + unet/ + scheduler/.
Studio facts that diffusers has no key for (class names, data, licence) live in STUDIO_FILE
beside them. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import UNet2DModel
from safetensors import SafetensorError
from safetensors.torch import load_file

from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.resources import default_model_dir
from diffusion_studio.core.sampling import ModelFn, classifier_free_guidance
from diffusion_studio.core.schedule import NoiseSchedule

STUDIO_FILE = "diffusion_studio.json"
SCHEDULER_FILE = "scheduler_config.json"
# In order of preference: safetensors before any pickle.
WEIGHT_FILES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
Layout = Literal["flat", "pipeline"]


@dataclass(frozen=True)
class ModelInfo:
    """What a person wants to know about a model, shown by `info` and the model panel."""

    name: str
    path: str
    layout: Layout
    resolution: tuple[int, int]
    in_channels: int
    out_channels: int
    parameters: int
    prediction_type: str
    beta_schedule: str
    num_train_timesteps: int
    variance_type: str
    class_names: tuple[str, ...] = ()
    null_class: int | None = None
    default_class: int = 0  # the class the window opens on
    description: str = ""
    license: str = ""
    data: str = ""

    @property
    def conditional(self) -> bool:
        return bool(self.class_names)

    def summary(self) -> list[tuple[str, str]]:
        """(label, value) rows, in reading order."""
        height, width = self.resolution
        rows = [
            ("Model", self.name),
            ("Folder", f"{self.path} ({self.layout} layout)"),
            ("Resolution", f"{width}x{height}, {self.in_channels} channels"),
            ("Parameters", f"{self.parameters / 1e6:.2f} M"),
            ("Prediction", self.prediction_type),
            ("Schedule", f"{self.beta_schedule}, T = {self.num_train_timesteps}"),
            ("Variance", self.variance_type),
        ]
        if self.class_names:
            guidance = "yes" if self.null_class is not None else "no (no null class)"
            rows.append(("Classes", ", ".join(self.class_names)))
            rows.append(("Classifier-free guidance", guidance))
        rows += [(k, v) for k, v in (("Data", self.data), ("Licence", self.license)) if v]
        return rows


@dataclass(eq=False)
class DiffusionModel:
    """A loaded network, its noise schedule and its info, on one device."""

    unet: UNet2DModel
    schedule: NoiseSchedule
    info: ModelInfo
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    bf16: bool = False

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
        bf16: bool = False,
    ) -> DiffusionModel:
        """A model from a network in memory; `studio` as the JSON beside the weights."""
        studio = studio or {}
        class_names, null_class = _class_names(unet, studio)
        size = unet.config.sample_size
        info = ModelInfo(
            name=str(studio.get("name") or "model"),
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
            class_names=class_names,
            null_class=null_class,
            default_class=_default_class(class_names, studio),
            description=str(studio.get("description", "")),
            license=str(studio.get("license", "")),
            data=str(studio.get("data", "")),
        )
        if info.out_channels != info.in_channels:
            raise InputError(
                f"{info.name} outputs {info.out_channels} channels for {info.in_channels} in "
                "(a learned variance); the studio runs fixed-variance models"
            )
        device = device or torch.device("cpu")
        return cls(unet.eval().requires_grad_(False).to(device), schedule, info, device, bf16)

    def class_index(self, name_or_index: str | int) -> int:
        """A class given by name (case-insensitive) or index, checked against the model."""
        names = self.info.class_names
        if not names:
            raise InputError(f"{self.info.name} is not class-conditional; leave the class out")
        if isinstance(name_or_index, int) or str(name_or_index).strip().isdigit():
            index = int(name_or_index)
            if 0 <= index < len(names):
                return index
            raise InputError(f"class index {index} is out of range 0..{len(names) - 1}")
        wanted = str(name_or_index).strip().casefold()
        for index, name in enumerate(names):
            if name.casefold() == wanted:
                return index
        raise InputError(f"unknown class {name_or_index!r}; this model has: {', '.join(names)}")

    def model_fn(self, class_label: int | None, guidance_scale: float, batch_size: int) -> ModelFn:
        """The sampler's callable: the UNet on this device, with classifier-free guidance.

        class_label None samples unconditionally (the null class) when the model is conditional.
        Outputs are float32 even under bf16 autocast: the sampler math stays in fp32.
        """
        info = self.info
        if not info.conditional:
            return lambda x_t, t: self._forward(x_t, t, None)
        if class_label is None or guidance_scale == 0.0:
            if info.null_class is None:
                raise InputError(f"{info.name} has no null class: choose a class")
            labels = torch.full((batch_size,), info.null_class, device=self.device)
            return lambda x_t, t: self._forward(x_t, t, labels)
        labels = torch.full((batch_size,), class_label, device=self.device)
        if guidance_scale == 1.0:
            return lambda x_t, t: self._forward(x_t, t, labels)
        if info.null_class is None:
            raise InputError(f"{info.name} was trained without a null class, so guidance must be 1")
        return classifier_free_guidance(self._forward, labels, info.null_class, guidance_scale)

    def compile(self) -> None:
        """torch.compile the network, for static shapes: each new batch size costs a compile
        (a minute or two on a CPU), then every call runs faster (about 1.5x on a CPU)."""
        self.unet = torch.compile(self.unet, dynamic=False)

    def _forward(
        self, x_t: torch.Tensor, t: int, class_labels: torch.Tensor | None
    ) -> torch.Tensor:
        # t as a tensor (what diffusers makes of an int anyway), so a compiled network does not
        # specialise on its value and recompile at every step
        timestep = torch.tensor(t, dtype=torch.long, device=x_t.device)
        if not self.bf16:
            return self.unet(x_t, timestep, class_labels=class_labels).sample
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.unet(x_t, timestep, class_labels=class_labels).sample.float()


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


@dataclass(frozen=True)
class _Folder:
    root: Path
    unet: Path
    layout: Layout
    scheduler_config: Path | None


def _find_folder(path: Path) -> _Folder:
    if not path.exists():
        raise InputError(f"model folder {path} does not exist")
    if not path.is_dir():
        raise InputError(f"{path} is a file; give the model's folder (with config.json)")
    if (path / "model_index.json").is_file():
        unet, scheduler = path / "unet", path / "scheduler" / SCHEDULER_FILE
        if not (unet / "config.json").is_file():
            raise InputError(f"{path} has model_index.json but no unet/config.json")
        return _Folder(path, unet, "pipeline", scheduler if scheduler.is_file() else None)
    if not (path / "config.json").is_file():
        raise InputError(
            f"{path} is not a diffusers model folder: it has neither config.json "
            "nor model_index.json"
        )
    scheduler = path / SCHEDULER_FILE
    if not scheduler.is_file():  # the unet/ folder of a pipeline, given directly
        scheduler = path.parent / "scheduler" / SCHEDULER_FILE
    return _Folder(path, path, "flat", scheduler if scheduler.is_file() else None)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} should hold a JSON object")
    return data


def _load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise InputError(f"{folder} has no weights: expected {WEIGHT_FILES[0]} (or a .bin)")
    if weights.suffix == ".safetensors":
        try:
            return load_file(weights)
        except (SafetensorError, OSError) as exc:
            raise InputError(f"{weights} is not a valid safetensors file ({exc})") from None
    try:
        # weights_only=True: a pickle may only hold tensors and plain containers, never code.
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise InputError(_refused_pickle_message(weights)) from exc
    if not isinstance(state, dict):
        raise InputError(f"{weights} does not hold a state dict of tensors")
    return state


def _refused_pickle_message(weights: Path) -> str:
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(weights)
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        unsafe = []  # not a torch checkpoint at all
    if unsafe:
        return (
            f"{weights} was refused: this pickle would import {', '.join(unsafe[:3])}, and the "
            "studio never runs code from a model file (convert it to safetensors)"
        )
    return f"{weights} is not a readable PyTorch checkpoint (damaged, or not model weights)"


def _build_unet(folder: Path) -> UNet2DModel:
    config = _read_json(folder / "config.json")
    class_name = config.get("_class_name", "UNet2DModel")
    if class_name != "UNet2DModel":
        raise InputError(
            f"{folder} holds a {class_name}; the studio runs pixel-space UNet2DModel networks"
        )
    try:
        unet = UNet2DModel.from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(
            f"{folder / 'config.json'} does not describe a UNet2DModel: {exc}"
        ) from None
    state = {k: v.float() for k, v in _load_state_dict(folder).items()}
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).splitlines()[1:2] or [str(exc)]
        raise InputError(
            f"the weights in {folder} do not match its config.json: {detail[0].strip()[:200]}"
        ) from None
    return unet.eval().requires_grad_(False)


def _class_names(unet: UNet2DModel, studio: dict[str, Any]) -> tuple[tuple[str, ...], int | None]:
    num_embeds = unet.config.num_class_embeds
    if not num_embeds or unet.config.class_embed_type is not None:
        return (), None
    names = [str(n) for n in studio.get("class_names", [])]
    if not names:
        return tuple(f"class {i}" for i in range(num_embeds)), None
    if len(names) not in (num_embeds, num_embeds - 1):
        raise InputError(
            f"{STUDIO_FILE} names {len(names)} classes but the network has {num_embeds} embeddings"
        )
    null_class = studio.get("null_class", num_embeds - 1 if len(names) == num_embeds - 1 else None)
    return tuple(names), null_class


def _default_class(names: tuple[str, ...], studio: dict[str, Any]) -> int:
    """The index of the JSON's "default_class" (a class name), else the first class."""
    name = studio.get("default_class")
    if name is None or not names:
        return 0
    if name not in names:
        raise InputError(f"{STUDIO_FILE}: default_class {name!r} is not one of its class_names")
    return names.index(name)


def load_model(
    path: str | Path | None = None, *, device: str | torch.device | None = None, bf16: bool = False
) -> DiffusionModel:
    """Load a UNet2DModel and its schedule from a local folder (None: the embedded default).

    Safetensors are preferred; a .bin goes through torch.load(weights_only=True) only. Without a
    scheduler_config.json the DDPM paper's linear schedule (T = 1000) is used.
    """
    if path is None:
        path = default_model_dir()
        if not path.is_dir():
            raise InputError(
                "no model given, and the embedded default model is missing from this "
                f"installation ({path}): reinstall diffusion-studio, or pass --model FOLDER "
                "(a diffusers UNet2DModel folder)"
            )
    folder = _find_folder(Path(path).expanduser())
    unet = _build_unet(folder.unet)
    schedule = (
        NoiseSchedule.from_config(_read_json(folder.scheduler_config))
        if folder.scheduler_config
        else NoiseSchedule.linear()
    )
    studio_file = folder.root / STUDIO_FILE
    studio = _read_json(studio_file) if studio_file.is_file() else {}
    studio.setdefault("name", folder.root.resolve().name)
    target = pick_device(device) if not isinstance(device, torch.device) else device
    return DiffusionModel.from_unet(
        unet,
        schedule,
        studio,
        path=str(folder.root),
        layout=folder.layout,
        device=target,
        bf16=bf16,
    )


def save_model(
    unet: UNet2DModel,
    schedule: NoiseSchedule,
    path: str | Path,
    *,
    studio: dict[str, Any] | None = None,
    layout: Layout = "flat",
    overwrite: bool = False,
) -> Path:
    """Write a model folder in either diffusers layout, with safetensors weights.

    The folder is written beside its destination and moved into place when complete.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        unet_dir, scheduler_dir = staging, staging
        if layout == "pipeline":
            unet_dir, scheduler_dir = staging / "unet", staging / "scheduler"
            _write_json(staging / "model_index.json", _model_index())
        unet.save_pretrained(unet_dir, safe_serialization=True)
        scheduler_dir.mkdir(exist_ok=True)
        _write_json(scheduler_dir / SCHEDULER_FILE, schedule.to_config())
        if studio:
            _write_json(staging / STUDIO_FILE, studio)
        _modes_as_made_by_hand(staging)
        if path.exists():
            shutil.rmtree(path)
        staging.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return path


def _modes_as_made_by_hand(folder: Path) -> None:
    """mkdtemp and safetensors make a folder and files only their owner can read; give them
    the modes the umask gives any new file (0o644 and 0o755 under the usual umask 022)."""
    probe = folder / ".mode-probe"
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    file_mode = probe.stat().st_mode & 0o777
    probe.unlink()
    dir_mode = file_mode | ((file_mode & 0o444) >> 2)  # x wherever r
    for item in [folder, *folder.rglob("*")]:
        item.chmod(dir_mode if item.is_dir() else file_mode)


def _model_index() -> dict[str, Any]:
    import diffusers

    return {
        "_class_name": "DDPMPipeline",
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDPMScheduler"],
        "unet": ["diffusers", "UNet2DModel"],
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
