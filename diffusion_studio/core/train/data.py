"""Training data: a folder of images, or an .npz of uint8 images with optional labels."""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import fit_to_size, load_image, to_pil
from diffusion_studio.core.limits import MAX_CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True, eq=False)
class TrainingData:
    """images (N, H, W, C) uint8; labels (N,) int64 indexing class_names, or None."""

    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    description: str

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1])

    def as_tensor(self) -> torch.Tensor:
        """All images as (N, C, H, W) float32 in [-1, 1] (the same mapping as images.to_tensor)."""
        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def load_training_data(
    path: str | os.PathLike[str], resolution: int, channels: int = 3
) -> TrainingData:
    """Read an .npz (`images` (N, H, W, 3) uint8, optional `labels` and `categories`) or a
    folder of images (recursive; any format load_image takes), fitted to resolution x resolution.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return _from_npz(path, resolution, channels)
    if path.is_dir():
        return _from_folder(path, resolution, channels)
    raise InputError(f"training data {path} is neither an .npz file nor a folder of images")


def _fit(image: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    pil = to_pil(image).convert("L" if channels == 1 else "RGB")
    fitted, _ = fit_to_size(pil, (resolution, resolution))
    array = np.asarray(fitted)
    return array[..., None] if array.ndim == 2 else array


def _from_npz(path: Path, resolution: int, channels: int) -> TrainingData:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if "images" not in names:
                raise InputError(f"{path} has no 'images' array (it has: {', '.join(names)})")
            images = archive["images"]
            labels = archive["labels"] if "labels" in names else None
            categories = archive["categories"] if "categories" in names else None
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{path} is not a readable .npz archive (damaged?): {exc}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise InputError(
            f"{path}: 'images' must be (N, H, W, 3) uint8, got {images.dtype} {images.shape}"
        )
    if len(images) == 0:
        raise InputError(f"{path}: 'images' holds no images")
    if images.shape[1:3] != (resolution, resolution) or images.shape[-1] != channels:
        images = np.stack([_fit(image, resolution, channels) for image in images])
    class_names: tuple[str, ...] = ()
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != (len(images),):
            raise InputError(f"{path}: 'labels' must be (N,) whole numbers, one per image")
        labels = labels.astype(np.int64)
        if labels.min(initial=0) < 0:
            raise InputError(f"{path}: 'labels' must be 0 or more")
        count = int(labels.max(initial=-1)) + 1
        if count > MAX_CLASSES:
            raise InputError(
                f"{path}: labels go up to {count - 1}; the limit is {MAX_CLASSES:,} classes"
            )
        if categories is not None:
            if categories.ndim != 1 or categories.dtype.kind not in "US":
                raise InputError(f"{path}: 'categories' must be a list of names")
            class_names = tuple(str(c) for c in categories)
            if len(class_names) < count:
                raise InputError(
                    f"{path}: labels go up to {count - 1} but there are only "
                    f"{len(class_names)} categories"
                )
        else:
            class_names = tuple(f"class {i}" for i in range(count))
    description = f"{len(images)} images from {path.name}"
    return TrainingData(images, labels, class_names, description)


def _from_folder(path: Path, resolution: int, channels: int) -> TrainingData:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for file in files:
        image, _ = fit_to_size(load_image(file, channels=channels), (resolution, resolution))
        array = np.asarray(image)
        images.append(array[..., None] if array.ndim == 2 else array)
    return TrainingData(np.stack(images), None, (), f"{len(images)} images from {path.name}/")


def split_held_out(
    data: TrainingData, share: float, seed: int
) -> tuple[TrainingData, TrainingData]:
    """(training, held-out): a seeded share of the images kept out of training."""
    order = np.random.default_rng([seed, 7]).permutation(len(data.images))
    cut = round(share * len(order))
    parts = []
    for chosen in (np.sort(order[cut:]), np.sort(order[:cut])):
        labels = None if data.labels is None else data.labels[chosen]
        parts.append(replace(data, images=data.images[chosen], labels=labels))
    return parts[0], parts[1]
