"""The class an image looks like, for an inpainting: a class-conditional model regenerates the
masked part as its class, so half a pizza under the default class (Smileys) comes back half a
smiley. The shipped evaluation classifier (resources/classifier: the emoji categories, 32x32)
reads the source image and suggests its class, for a model of the same classes."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.info import ModelInfo


@dataclass(frozen=True)
class ClassSuggestion:
    """The model's class index, its name, and the classifier's probability for it."""

    label: int
    name: str
    probability: float

    def describe(self) -> str:
        return f"from the image: {self.name}, {self.probability:.2f}"


@functools.lru_cache(maxsize=1)
def _classifier():
    from diffusion_studio.core.train.evaluate import load_eval_classifier

    try:
        model, card, _ = load_eval_classifier()
    except (InputError, OSError, ValueError, KeyError, RuntimeError):
        return None  # not shipped here (a stripped install): no suggestion, nothing breaks
    return model, card


def can_suggest(model: ModelInfo) -> bool:
    """Whether the shipped classifier knows this model's classes (the same names, in order)
    and reads its images (RGB)."""
    loaded = _classifier() if model.class_names else None
    return (
        loaded is not None
        and model.in_channels == 3
        and tuple(model.class_names) == tuple(loaded[1].class_names)
    )


def suggest_class(image: np.ndarray, model: ModelInfo) -> ClassSuggestion | None:
    """The class of `image` ((H, W, 3) uint8, as fitted to the model) among the model's
    classes, or None where the shipped classifier does not know them (can_suggest)."""
    if not can_suggest(model):
        return None
    import torch

    from diffusion_studio.core.train.evaluate import resized, to_tensor_batch

    classifier, card = _classifier()
    batch = to_tensor_batch(resized(np.ascontiguousarray(image)[None], card.resolution))
    with torch.inference_mode():
        probabilities = classifier(batch).softmax(dim=1)[0]
    label = int(probabilities.argmax())
    return ClassSuggestion(label, model.class_names[label], float(probabilities[label]))
