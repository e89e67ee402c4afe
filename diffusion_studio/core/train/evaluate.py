"""Sample quality without an Inception network: a small classifier trained on the same data.

For a sampler setting it reports (a) class accuracy, the share of class-conditional samples the
classifier gives the requested class, and (b) a Frechet distance between generated and real
images in the classifier's feature space (the FID recipe of Heusel et al. 2017 with our own
features), beside the real-vs-real floor of two disjoint halves of the data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.files import atomic_write, check_file_target
from diffusion_studio.core.images import fit_to_size, to_pil, to_tensor
from diffusion_studio.core.request import FIXED_VARIANCES, SAMPLERS
from diffusion_studio.core.resources import resources_dir
from diffusion_studio.core.train.data import TrainingData

CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_CARD = "classifier.json"


class EvalClassifier(nn.Module):
    """A small CNN for 32x32 images: three stages of two 3x3 convolutions, then a linear head.

    `features` is the 128-d global-average-pooled activation the Frechet distance uses.
    """

    def __init__(self, num_classes: int, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for _ in range(2):
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
                channels = out
            if stage < 2:
                layers.append(nn.AvgPool2d(2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(channels, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 128) features."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class EvalClassifierCard:
    class_names: tuple[str, ...]
    held_out_accuracy: float
    real_floor: float  # Frechet distance between two disjoint halves of the real data
    held_out_images: int
    train_images: int
    epochs: int
    seed: int
    # images of each class in the data of the real statistics: samples are drawn in these
    # shares, as an even spread over unevenly sized classes is itself far from the data
    class_counts: tuple[int, ...] = ()
    # (n, the mean Frechet distance of n real images, drawn in class_counts' shares, against
    # all of them): the floor an n-sample score is read against
    floors_by_size: tuple[tuple[int, float], ...] = ()
    resolution: int = 32  # the images it was trained on and reads: resolution x resolution

    def floor_at(self, count: int) -> float | None:
        return dict(self.floors_by_size).get(count)


def held_out_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split: (train indices, held-out indices), the same fraction of each class."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held.extend(members[: max(1, round(len(members) * fraction))])
    held_out = np.sort(np.asarray(held))
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out


def train_eval_classifier(
    data: TrainingData, *, epochs: int = 40, seed: int = 0, held_out: float = 0.15
) -> tuple[EvalClassifier, float]:
    """Train the yardstick on labelled data, with shifts and flips.

    Returns the classifier and its accuracy on a stratified held-out split it never saw.
    """
    if data.labels is None:
        raise InputError("the evaluation classifier needs labelled data")
    torch.manual_seed(seed)
    images, labels = data.as_tensor(), torch.from_numpy(data.labels)
    train_idx, test_idx = held_out_split(data.labels, held_out, seed)
    model = EvalClassifier(len(data.class_names), data.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    batches = (len(train_idx) + 127) // 128
    lr = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=epochs * batches)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=g)]
        for batch in order.split(128):
            x = _augment(images[batch], g)
            loss = nn.functional.cross_entropy(model(x), labels[batch], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr.step()
    model.eval()
    accuracy = float((predict(model, images[test_idx]) == labels[test_idx]).float().mean())
    return model, accuracy


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (white padding, as the data's background) and flips."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2), value=1.0)
    dy, dx = torch.randint(0, 5, (2,), generator=g).tolist()
    x = padded[:, :, dy : dy + h, dx : dx + w]
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


@torch.inference_mode()
def predict(model: EvalClassifier, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([model(b).argmax(1) for b in images.split(batch_size)])


@torch.inference_mode()
def features(model: EvalClassifier, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """(N, 128) float64 features of (N, C, H, W) images in [-1, 1]."""
    return torch.cat([model.features(b) for b in images.split(batch_size)]).double().numpy()


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """The Gaussian a Frechet distance compares: mean (D,) and covariance (D, D), float64."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        return cls(features.mean(0), np.cov(features, rowvar=False))


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """Frechet distance between two Gaussians (Heusel et al. 2017, eq. 6).

    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), with the matrix
    square roots taken by symmetric eigendecomposition (no scipy needed).
    """
    values, vectors = np.linalg.eigh(a.cov)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ b.cov @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    distance = ((a.mean - b.mean) ** 2).sum() + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_root
    return float(max(distance, 0.0))


def real_statistics(
    classifier: EvalClassifier, data: TrainingData, seed: int = 0
) -> tuple[FeatureStats, float]:
    """The real data's feature statistics, and the real-vs-real floor: the Frechet distance
    between two disjoint random halves of the data."""
    feats = features(classifier, data.as_tensor())
    order = np.random.default_rng(seed).permutation(len(feats))
    half = len(order) // 2
    floor = frechet_distance(
        FeatureStats.of(feats[order[:half]]), FeatureStats.of(feats[order[half:]])
    )
    return FeatureStats.of(feats), floor


FLOOR_SIZES = (128, 256, 512, 1024)


def floors_by_size(
    classifier: EvalClassifier,
    data: TrainingData,
    real: FeatureStats,
    sizes: Sequence[int] = FLOOR_SIZES,
    draws: int = 10,
    seed: int = 0,
    even: bool = False,
) -> tuple[tuple[int, float], ...]:
    """For each n: the mean Frechet distance of n real images against all of them, drawn as
    eval draws samples (each class its class_allocation share, at random within it; with
    `even`, an even spread over the classes). A perfect model's n samples score about this."""
    if data.labels is None:
        raise InputError("the floors need labelled data")
    feats = features(classifier, data.as_tensor())
    classes = len(data.class_names)
    members = [np.flatnonzero(data.labels == c) for c in range(classes)]
    counts = () if even else [len(m) for m in members]
    rng = np.random.default_rng([seed, 1])
    floors = []
    for size in (s for s in sizes if s < len(feats)):
        allocation = class_allocation(size, classes, counts)
        if any(k > len(m) for k, m in zip(allocation, members)):
            continue
        distances = []
        for _ in range(draws):
            chosen = np.concatenate(
                [rng.choice(m, k, replace=False) for m, k in zip(members, allocation)]
            )
            distances.append(frechet_distance(FeatureStats.of(feats[chosen]), real))
        floors.append((size, round(float(np.mean(distances)), 4)))
    return tuple(floors)


def class_allocation(count: int, classes: int, class_counts: Sequence[int] = ()) -> list[int]:
    """How many of `count` samples each class gets: in the shares of `class_counts` (the
    data's images per class), the remainders to the largest fractions; evenly without them."""
    shares = np.asarray(class_counts if class_counts else [1] * classes, dtype=np.float64)
    if len(shares) != classes or shares.sum() <= 0:
        raise InputError(f"{len(shares)} class counts for {classes} classes")
    exact = count * shares / shares.sum()
    allocation = np.floor(exact).astype(int)
    left = count - int(allocation.sum())
    allocation[np.argsort(-(exact - allocation), kind="stable")[:left]] += 1
    return allocation.tolist()


def save_eval_classifier(
    model: EvalClassifier,
    card: EvalClassifierCard,
    real: FeatureStats,
    folder: Path,
    overwrite: bool = False,
) -> None:
    """Weights and the real data's feature statistics as safetensors, the card as JSON, each
    written atomically; an existing classifier is replaced only with `overwrite`."""
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["real_features.mean"] = torch.from_numpy(real.mean)
    tensors["real_features.cov"] = torch.from_numpy(real.cov)
    payload = {
        **card.__dict__,
        "class_names": list(card.class_names),
        "class_counts": list(card.class_counts),
        "floors_by_size": {str(n): floor for n, floor in card.floors_by_size},
    }
    text = (json.dumps(payload, indent=2) + "\n").encode()
    for name in (CLASSIFIER_WEIGHTS, CLASSIFIER_CARD):  # both refused before either is written
        check_file_target(folder / name, overwrite=overwrite)
    atomic_write(folder / CLASSIFIER_WEIGHTS, lambda f: f.write(save(tensors)), overwrite=overwrite)
    atomic_write(folder / CLASSIFIER_CARD, lambda f: f.write(text), overwrite=overwrite)


def load_eval_classifier(
    folder: Path | None = None,
) -> tuple[EvalClassifier, EvalClassifierCard, FeatureStats]:
    """The shipped evaluation classifier (or one from `folder`), its card and real statistics."""
    folder = folder or resources_dir() / "classifier"
    if not (folder / CLASSIFIER_WEIGHTS).is_file():
        raise InputError(f"no evaluation classifier in {folder}")
    raw = json.loads((folder / CLASSIFIER_CARD).read_text(encoding="utf-8"))
    card = EvalClassifierCard(
        **{
            **raw,
            "class_names": tuple(raw["class_names"]),
            "class_counts": tuple(raw.get("class_counts", ())),
            "floors_by_size": tuple((int(n), f) for n, f in raw.get("floors_by_size", {}).items()),
        }
    )
    tensors = load_file(folder / CLASSIFIER_WEIGHTS)
    real = FeatureStats(
        tensors.pop("real_features.mean").numpy(), tensors.pop("real_features.cov").numpy()
    )
    model = EvalClassifier(len(card.class_names))
    model.load_state_dict(tensors)
    return model.eval(), card, real


@dataclass(frozen=True)
class Score:
    class_accuracy: float
    frechet_distance: float


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) uint8 at size x size, as a person's image is fitted (shrinking with
    Lanczos, as the emoji data was made from its sources): a model of 64x64 images is scored by
    the 32x32 classifier against the same real statistics as the 32x32 model."""
    if images.shape[1:3] == (size, size):
        return images
    fitted = [np.asarray(fit_to_size(to_pil(image), (size, size))[0]) for image in images]
    return np.stack(fitted).reshape(len(images), size, size, images.shape[3])


def to_tensor_batch(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32 in [-1, 1], as images.to_tensor maps one."""
    return torch.cat([to_tensor(image) for image in images])


def score(
    classifier: EvalClassifier, images: torch.Tensor, labels: torch.Tensor, real: FeatureStats
) -> Score:
    accuracy = float((predict(classifier, images) == labels).float().mean())
    fake = FeatureStats.of(features(classifier, images))
    return Score(accuracy, frechet_distance(fake, real))


def evaluation_rows(sampler: str, etas: Sequence[float]) -> list[tuple[str, dict[str, Any]]]:
    """The rows of the DDIM paper's Table 1 for `sampler` (a name of the sampler table,
    "both" for DDPM and DDIM, the paper's, or "all" for the whole table), as a label and the
    request fields it sets (core.workflows.sweep's rows): a row per eta for a sampler that
    takes one, a row per variance for one that takes a variance (DDPM: beta-tilde, and beta,
    the paper's sigma-hat), else one. DDPM with beta-tilde is DDIM at eta = 1, so it gets no
    row beside that one."""
    names = {"both": ["ddpm", "ddim"], "all": list(SAMPLERS)}.get(sampler, [sampler])
    short = {"fixed_small": "beta~", "fixed_large": "beta"}
    rows: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(names, key=lambda n: "eta" not in SAMPLERS[n].options):
        spec = SAMPLERS[name]
        if "eta" in spec.options:
            rows += [(f"{spec.label} eta={eta:g}", {"sampler": name, "eta": eta}) for eta in etas]
        elif "variance_type" in spec.options:
            same_as_eta_1 = len(names) > 1 and any(eta == 1 for eta in etas)
            for variance in FIXED_VARIANCES:
                if variance == "fixed_small" and same_as_eta_1:
                    continue
                settings = {"sampler": name, "variance_type": variance}
                rows.append((f"{spec.label} {short.get(variance, variance)}", settings))
        else:
            rows.append((spec.label, {"sampler": name}))
    return rows


def format_table(
    rows: Sequence[tuple[str, Sequence[Score | None]]], steps: Iterable[int], metric: str
) -> str:
    """A table in the shape of the DDIM paper's Table 1: a row per sampler, a column per S."""
    steps = list(steps)
    width = max([16, *(len(name) + 2 for name, _ in rows)])
    lines = [f"{'':<{width}}" + "".join(f"{f'S={s}':>10}" for s in steps)]
    for name, scores in rows:
        cells = []
        for s in scores:
            value = None if s is None else getattr(s, metric)
            cells.append(f"{'-':>10}" if value is None else f"{value:>10.3f}")
        lines.append(f"{name:<{width}}" + "".join(cells))
    return "\n".join(lines)
