"""The one boundary where model folders are read and written: diffusers' UNet2DModel in its
two folder layouts, offline.

(a) flat, as the google/ddpm-* repositories: config.json + diffusion_pytorch_model.safetensors
    (or .bin) + scheduler_config.json;
(b) pipeline: model_index.json + unet/ + scheduler/.
Studio facts that diffusers has no key for (class names, data, licence) live in STUDIO_FILE
beside them. Whatever is wrong with a folder (a value in config.json, a weight's shape, a
damaged file, the studio JSON) comes out of load_model as one InputError naming the file and,
where it applies, the key; nothing is allocated before the config is known to fit the limits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel
from safetensors.torch import load_file

from diffusion_studio.core.classifier import CLASSIFIER_CLASS, Classifier, NoiseClassifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import check_folder_target, replace_folder
from diffusion_studio.core.limits import MAX_PARAMETERS
from diffusion_studio.core.model import (
    STUDIO_FILE,
    DiffusionModel,
    Layout,
    build_unet,
    pick_device,
)
from diffusion_studio.core.model_configs import check_classifier_config, check_unet_config
from diffusion_studio.core.resources import default_model_dir
from diffusion_studio.core.schedule import NoiseSchedule

SCHEDULER_FILE = "scheduler_config.json"
# In order of preference: safetensors before any pickle.
WEIGHT_FILES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)
MAX_JSON_BYTES = 16 * 1024 * 1024  # a config.json with trained betas is a few hundred KB


@dataclass(frozen=True)
class _Folder:
    root: Path
    unet: Path
    layout: Layout
    scheduler_config: Path | None


def load_model(
    path: str | Path | None = None, *, device: str | torch.device | None = None
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
    unet, weights = _build_unet(folder.unet)
    schedule = NoiseSchedule.linear()
    if folder.scheduler_config:
        config = _read_json(folder.scheduler_config)
        try:
            schedule = NoiseSchedule.from_config(config)
        except InputError as exc:
            raise InputError(f"{folder.scheduler_config}: {exc}") from None
    studio_file = folder.root / STUDIO_FILE
    studio = _read_json(studio_file) if _present(studio_file) else {}
    studio.setdefault("name", folder.root.resolve().name)
    target = pick_device(device) if not isinstance(device, torch.device) else device
    try:
        return DiffusionModel.from_unet(
            unet,
            schedule,
            studio,
            path=str(folder.root),
            layout=folder.layout,
            device=target,
            weights_hash=file_hash(weights),
        )
    except InputError as exc:
        where = studio_file if studio_file.is_file() else folder.unet / "config.json"
        raise InputError(f"{where}: {exc}") from None


def load_classifier(path: str | Path, *, device: str | torch.device | None = None) -> Classifier:
    """Load a noise-aware classifier folder: config.json of a NoiseClassifier, its weights
    (safetensors preferred), scheduler_config.json (the noise it was trained on) and the studio
    JSON (name and class names). Anything wrong is one InputError naming the file."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise InputError(f"classifier folder {path} does not exist or is not a folder")
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a classifier folder: it has no config.json")
    folder = _find_folder(path)
    if folder.layout != "flat":
        raise InputError(f"{folder.root} is a pipeline folder; a classifier folder is flat")
    file = folder.root / "config.json"
    config = _read_json(file)
    if config.get("_class_name") != CLASSIFIER_CLASS:
        raise InputError(
            f"{folder.root} is not a classifier folder: its config.json describes a "
            f"{config.get('_class_name', 'UNet2DModel')}, not a {CLASSIFIER_CLASS}"
        )
    config = check_classifier_config(config, file)
    with torch.device("meta"):
        network = NoiseClassifier.from_config(config)
    if sum(p.numel() for p in network.parameters()) > MAX_PARAMETERS:
        raise InputError(f"{file} describes a classifier beyond {MAX_PARAMETERS:,} parameters")
    weights, state = _load_state_dict(folder.root)
    _check_weights(weights, state, network.state_dict())
    network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    schedule = NoiseSchedule.linear()
    if folder.scheduler_config:
        try:
            schedule = NoiseSchedule.from_config(_read_json(folder.scheduler_config))
        except InputError as exc:
            raise InputError(f"{folder.scheduler_config}: {exc}") from None
    studio_file = folder.root / STUDIO_FILE
    studio = _read_json(studio_file) if _present(studio_file) else {}
    classes = config["num_classes"]
    names = studio.get("class_names", [f"class {i}" for i in range(classes)])
    if (
        not isinstance(names, list)
        or len(names) != classes
        or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names)
    ):
        raise InputError(f"{studio_file}: class_names must be {classes} short texts")
    name = studio.get("name", folder.root.resolve().name)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise InputError(f"{studio_file}: name must be a short text")
    target = pick_device(device) if not isinstance(device, torch.device) else device
    network = network.eval().requires_grad_(False).to(target)
    return Classifier(network, schedule, tuple(names), name, str(folder.root), file_hash(weights))


def save_model(
    unet: UNet2DModel | NoiseClassifier,
    schedule: NoiseSchedule,
    path: str | Path,
    *,
    studio: dict[str, Any] | None = None,
    layout: Layout = "flat",
    overwrite: bool = False,
) -> Path:
    """Write a model folder in either diffusers layout, with safetensors weights.

    The folder is written beside its destination and moved into place when complete. An
    existing `path` is replaced only with `overwrite`, and only if it is a model folder
    (core.files.check_folder_target): a folder holding anything else is never touched.
    """
    path = check_folder_target(path, overwrite=overwrite)
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
        replace_folder(staging, path, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return path


# --- reading ----------------------------------------------------------------------------


def _present(path: Path) -> bool:
    """Whether a file of a model folder is there: a regular file is, nothing is not, and
    anything else (a FIFO, a device, a folder) is refused rather than read or passed over."""
    if path.is_file():
        return True
    if path.exists() or path.is_symlink():
        raise InputError(f"{path} is not a regular file")
    return False


def _find_folder(path: Path) -> _Folder:
    if not path.exists():
        raise InputError(f"model folder {path} does not exist")
    if not path.is_dir():
        raise InputError(f"{path} is a file; give the model's folder (with config.json)")
    if _present(path / "model_index.json"):
        unet, scheduler = path / "unet", path / "scheduler" / SCHEDULER_FILE
        if not _present(unet / "config.json"):
            raise InputError(f"{path} has model_index.json but no unet/config.json")
        return _Folder(path, unet, "pipeline", scheduler if _present(scheduler) else None)
    if not _present(path / "config.json"):
        raise InputError(
            f"{path} is not a diffusers model folder: it has neither config.json "
            "nor model_index.json"
        )
    scheduler = path / SCHEDULER_FILE
    if not _present(scheduler):  # the unet/ folder of a pipeline, given directly
        scheduler = path.parent / "scheduler" / SCHEDULER_FILE
    return _Folder(path, path, "flat", scheduler if _present(scheduler) else None)


def _no_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():  # a FIFO or a device would block or never end
            raise InputError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MB: not a config")
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InputError(f"{path} is not readable JSON: {reason}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} should hold a JSON object")
    return data


def file_hash(path: Path) -> str:
    """The SHA-256 of a weights file, in hex: a model's identity in the records it writes,
    which never name its folder (A1111's "Model hash" is its first 10 characters)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * 2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_file(folder: str | Path) -> Path | None:
    """The weights file a model folder loads (either layout), or None."""
    try:
        found = _find_folder(Path(folder))
    except InputError:
        return None
    return next((found.unet / n for n in WEIGHT_FILES if (found.unet / n).is_file()), None)


def _build_unet(folder: Path) -> tuple[UNet2DModel, Path]:
    """The network of folder/config.json with its weights, and the weights' file: built on the
    meta device first (no memory), so its size is checked, and the weights' keys and shapes
    against it, before anything is allocated."""
    file = folder / "config.json"
    config = _read_json(file)
    class_name = config.get("_class_name", "UNet2DModel")
    if class_name == CLASSIFIER_CLASS:
        raise InputError(f"{folder} holds a classifier: give it as the classifier, not the model")
    if class_name != "UNet2DModel":
        raise InputError(
            f"{folder} holds a {class_name}; the studio runs pixel-space UNet2DModel networks"
        )
    config = check_unet_config(config, file)
    try:
        unet = build_unet(config)
    except InputError:
        raise
    except Exception as exc:  # diffusers raises whatever its constructor meets; say it once
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{file} does not describe a UNet2DModel diffusers can build: {detail}"
        ) from None
    parameters = sum(p.numel() for p in unet.parameters())
    if parameters > MAX_PARAMETERS:
        raise InputError(
            f"{file} describes a network of {parameters / 1e9:,.1f} billion parameters; "
            f"the studio's limit is {MAX_PARAMETERS / 1e9:.0f} billion"
        )
    weights, state = _load_state_dict(folder)
    _check_weights(weights, state, unet.state_dict())
    unet.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return unet.eval().requires_grad_(False), weights


def _load_state_dict(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise InputError(f"{folder} has no weights: expected {WEIGHT_FILES[0]} (or a .bin)")
    if weights.suffix == ".safetensors":
        try:
            return weights, load_file(weights)
        except Exception as exc:  # safetensors' errors differ by version; each is "unreadable"
            raise InputError(f"{weights} is not a valid safetensors file ({exc})") from None
    try:
        # weights_only=True: a pickle may only hold tensors and plain containers, never code.
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # a refused global, a damaged zip, a truncated stream...
        raise InputError(_refused_pickle_message(weights)) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError(f"{weights} does not hold a state dict of tensors")
    return weights, state


def _refused_pickle_message(weights: Path) -> str:
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(weights)
    except Exception:  # not a torch checkpoint at all: the plain message below says so
        unsafe = []
    if unsafe:
        return (
            f"{weights} was refused: this pickle would import {', '.join(unsafe[:3])}, and the "
            "studio never runs code from a model file (convert it to safetensors)"
        )
    return f"{weights} is not a readable PyTorch checkpoint (damaged, or not model weights)"


def check_finite(key: str, tensor: torch.Tensor, where: Path) -> None:
    """A weight of NaN or infinite values makes every image NaN, drawn as flat grey: refuse the
    file where it is read, naming the weight."""
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{where}: weight {key!r} holds NaN or infinite values (a damaged or "
                         "diverged model)")  # fmt: skip


def _check_weights(
    weights: Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> None:
    """Every weight the config needs, each of its shape, and nothing else; names the key."""
    for key, tensor in state.items():
        if key not in expected:
            raise InputError(f"{weights}: weight {key!r} is not part of the network in config.json")
        if not tensor.is_floating_point():
            raise InputError(f"{weights}: weight {key!r} is {tensor.dtype}, not floating point")
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise InputError(
                f"{weights}: weight {key!r} has shape {tuple(tensor.shape)}, "
                f"config.json needs {tuple(expected[key].shape)}"
            )
        check_finite(key, tensor, weights)
    missing = [key for key in expected if key not in state]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{weights} lacks the weight {missing[0]!r}{more} that config.json needs")


# --- writing ----------------------------------------------------------------------------


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
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")
