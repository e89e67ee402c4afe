"""The checks a request must pass for a model before anything runs: its values, the class
and the classifier, the network calls and the memory it needs. Torch-free, so the window can
check a run without importing the engine (the model it checks brings torch with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import (
    MAX_NETWORK_CALLS,
    TRAJECTORY_BUDGET_BYTES,
    activation_bytes,
    format_bytes,
    memory_budget,
)
from diffusion_studio.core.moves import network_calls
from diffusion_studio.core.request import LEARNED_VARIANCES, SampleRequest

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier
    from diffusion_studio.core.model import DiffusionModel


def validate(
    request: SampleRequest,
    model: DiffusionModel,
    inpaint: bool = False,
    classifier: Classifier | None = None,
) -> None:
    """Raise InputError, with what to change, for a request this model (and classifier) cannot
    run: its values, and the network calls and memory it needs (checked before anything is
    made). With classifier guidance the class is the classifier's."""
    request.check()
    model.check_precision(request.precision)
    r, T, info = request, model.schedule.num_train_timesteps, model.info
    if not 1 <= r.num_inference_steps <= T:
        raise InputError(
            f"steps must be between 1 and {T} (the model's training steps), "
            f"got {r.num_inference_steps}"
        )
    if r.classifier_scale:
        if classifier is None:
            raise InputError("a classifier scale needs a classifier (--classifier FOLDER)")
        unfit = classifier.mismatch(model)
        if unfit:
            raise InputError(f"the classifier does not fit the model: {unfit}")
        if r.class_label is not None and not 0 <= r.class_label < len(classifier.class_names):
            raise InputError(
                f"class index {r.class_label} is out of range 0..{len(classifier.class_names) - 1}"
            )
    if r.class_label is not None and (info.conditional or not r.classifier_scale):
        model.class_index(r.class_label)
    if r.variance_type in LEARNED_VARIANCES and not info.learns_variance:
        raise InputError(
            f"{info.name} does not learn its variance: choose fixed_small or fixed_large"
        )
    if info.conditional and info.null_class is None:
        if r.class_label is None:
            raise InputError(f"{info.name} has no null class: choose a class")
        if r.guidance_scale != 1.0:
            raise InputError(f"{info.name} was trained without a null class, so guidance must be 1")
    check_resources(request, model, inpaint, classifier)


def check_resources(
    request: SampleRequest,
    model: DiffusionModel,
    inpaint: bool,
    classifier: Classifier | None = None,
    trajectory_bytes: int = TRAJECTORY_BUDGET_BYTES,
) -> None:
    """Refuse a run whose network calls or memory are over the limits (core/limits.py): the
    activations of the batch (twice with guidance), the classifier's with its backward pass,
    and the trajectory it may record."""
    calls = network_calls(request, inpaint)
    if calls > MAX_NETWORK_CALLS:
        raise InputError(
            f"this RePaint run would make {calls:,} network calls; the limit is "
            f"{MAX_NETWORK_CALLS:,}: lower the resample count (--jump-n-sample) or the steps"
        )
    height, width = model.info.resolution
    guided = model.info.conditional and request.guidance_scale not in (0.0, 1.0)
    images = request.batch_size * (2 if guided else 1)
    frame = 2 * request.batch_size * height * width * model.info.in_channels  # x_t and x0
    need = images * activation_bytes(model.unet.config, height, width) + min(
        frame * calls, max(trajectory_bytes, 2 * frame)
    )
    if classifier is not None and request.classifier_scale:  # forward kept for the backward
        need += 2 * request.batch_size * activation_bytes(classifier.network.config, height, width)
    budget = memory_budget(model.device.type, model.device.index)
    if need > budget:
        raise InputError(
            f"{request.batch_size} images of {width}x{height} need about {format_bytes(need)} "
            f"on {model.device}, and {format_bytes(budget)} is free: generate fewer at a time "
            "(a smaller batch, -n)"
        )
