"""Guidance: classifier-free guidance (Ho & Salimans 2022), which makes the model callable
the samplers see, and classifier guidance's term (Dhariwal & Nichol 2021), which the samplers'
updates take."""

from __future__ import annotations

from collections.abc import Callable

import torch

ModelFn = Callable[[torch.Tensor, int], torch.Tensor]
"""(x_t (N, C, H, W), timestep) -> network output (N, C, H, W)."""

ConditionalModelFn = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]
"""(x_t, timestep, class_labels (N,) long) -> network output."""

ClassifierGrad = Callable[[torch.Tensor, int], torch.Tensor]
"""(x_t, timestep) -> s * grad_x log p(y | x_t, t): classifier guidance's term, already scaled."""


def classifier_gradient(
    classifier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    class_labels: torch.Tensor,
    scale: float,
) -> ClassifierGrad:
    """Classifier guidance, Dhariwal & Nichol 2021: s grad log p_phi(y | x_t, t) of a
    noise-aware classifier (x_t, t) -> logits. The gradient runs through the classifier alone,
    outside the samplers' inference mode; the diffusion network is never in its graph."""

    def gradient(x_t: torch.Tensor, t: int) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            x = x_t.detach().clone().requires_grad_(True)
            timesteps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            log_probs = torch.log_softmax(classifier(x, timesteps).float(), dim=-1)
            chosen = log_probs[torch.arange(x.shape[0], device=x.device), class_labels].sum()
            (grad,) = torch.autograd.grad(chosen, x)
        return scale * grad.detach()

    return gradient


def classifier_free_guidance(
    model_fn: ConditionalModelFn,
    class_labels: torch.Tensor,
    null_class: int,
    guidance_scale: float,
) -> ModelFn:
    """Classifier-free guidance, Ho & Salimans 2022: out_uncond + s (out_cond - out_uncond).

    class_labels (N,) long; `null_class` is the label the model was trained with when the label
    was dropped. s = 1 is the conditional model alone (one forward), s = 0 the unconditional one;
    otherwise cond and uncond run as one batch of 2N. Of a model that learns its variance only
    the prediction (the first C channels) is guided; the variance is the conditional one's.
    """
    if guidance_scale == 1.0:
        return lambda x_t, t: model_fn(x_t, t, class_labels)
    null_labels = torch.full_like(class_labels, null_class)
    if guidance_scale == 0.0:
        return lambda x_t, t: model_fn(x_t, t, null_labels)
    both_labels = torch.cat([class_labels, null_labels])

    def guided(x_t: torch.Tensor, t: int) -> torch.Tensor:
        out_cond, out_uncond = model_fn(torch.cat([x_t, x_t]), t, both_labels).chunk(2)
        channels = x_t.shape[1]  # a learned variance (the rest) stays the conditional one's
        mixed = out_uncond[:, :channels] + guidance_scale * (
            out_cond[:, :channels] - out_uncond[:, :channels]
        )
        return torch.cat([mixed, out_cond[:, channels:]], dim=1)

    return guided
