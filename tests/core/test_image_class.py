"""The class an image looks like, suggested for an inpainting by the shipped classifier."""

from __future__ import annotations

import dataclasses

from diffusion_studio.core.image_class import can_suggest, suggest_class
from diffusion_studio.core.job import fit_source
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.resources import sample_images


def sample(name: str):
    return next(p for p in sample_images() if p.stem == name)


def test_the_pizza_looks_like_food_and_the_fox_like_an_animal() -> None:
    info = load_model(None).info
    assert can_suggest(info)
    for name, wanted in (("pizza", "Food & Drink"), ("fox-face", "Animals & Nature")):
        image, _, _ = fit_source(sample(name), info)
        suggestion = suggest_class(image, info)
        assert suggestion.name == wanted and info.class_names[suggestion.label] == wanted
        assert 0.5 < suggestion.probability <= 1.0
        assert suggestion.describe().startswith(f"from the image: {wanted}, 0.")


def test_other_classes_or_channels_get_no_suggestion(tiny_model_dir) -> None:
    tiny = load_model(tiny_model_dir).info
    assert not can_suggest(tiny)
    image, _, _ = fit_source(sample("pizza"), tiny)
    assert suggest_class(image, tiny) is None
    grey = dataclasses.replace(load_model(None).info, in_channels=1)
    assert not can_suggest(grey)
