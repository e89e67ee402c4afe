"""Linear degradations y = A x and DDNM's null-space projection (Wang, Yu and Zhang, ICLR 2023,
"Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model",
https://arxiv.org/abs/2212.00490).

At every step the predicted clean image x_0 is replaced by A+ y + (I - A+ A) x_0: its part in
A's range is the observation's, exactly, and the network fills the null space. For a mask it is
RePaint's merge done on x_0; for super-resolution A averages factor x factor blocks and A+
copies each average to its block, so the result's block averages are the small picture's; for
colorization A is each pixel's luminance (ITU-R BT.601 weights) and A+ spreads it over the
channels in proportion to the weights, so the result's luminance is the grey picture's.

The projection acts on the network's output (`projected`), so every sampler takes it as it
is: the output is turned into x_0, projected, and turned back into the model's prediction type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import to_tensor
from diffusion_studio.core.job import Job
from diffusion_studio.core.masks import mask_to_tensor
from diffusion_studio.core.sampling import ModelFn
from diffusion_studio.core.schedule import NoiseSchedule

Operator = Literal["mask", "average", "luminance"]
OPERATORS: tuple[str, ...] = ("mask", "average", "luminance")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")


@dataclass(frozen=True, eq=False)
class Degradation:
    """A linear degradation and its pseudo-inverse (A A+ A = A), on (N, C, H, W) tensors."""

    apply: Callable[[torch.Tensor], torch.Tensor]
    pinv: Callable[[torch.Tensor], torch.Tensor]


def masked(known: torch.Tensor) -> Degradation:
    """Keep the known pixels (`known` (1 or N, 1, H, W) bool), zero the rest; its own
    pseudo-inverse."""
    keep = known.float()
    return Degradation(lambda x: x * keep, lambda y: y * keep)


def average(factor: int) -> Degradation:
    """factor x factor block averages; A+ copies each average over its block (nearest)."""
    if factor < 1:
        raise InputError(f"the factor must be 1 or more, got {factor}")

    def down(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, factor)

    def up(y: torch.Tensor) -> torch.Tensor:
        return y.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)

    return Degradation(down, up)


def luminance(channels: int = 3) -> Degradation:
    """Each pixel's luminance (N, 1, H, W) of an RGB image; A+ y = w y / (w . w), w the
    weights, so A A+ is the identity."""
    if channels != 3:
        raise InputError("colorizing needs an RGB model (3 channels)")
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    norm = float((weights**2).sum())

    def gray(x: torch.Tensor) -> torch.Tensor:
        return (x * weights.to(x)).sum(dim=1, keepdim=True)

    def spread(y: torch.Tensor) -> torch.Tensor:
        return y * weights.to(y) / norm

    return Degradation(gray, spread)


BOX_ROUNDS = 50  # alternating projections onto [-1, 1] and A x = y, at most


def projection(degradation: Degradation, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """x_0 -> A+ y + (I - A+ A) x_0 (DDNM, eq. 10), y the observation A x (in [-1, 1]).

    A projected x_0 can leave [-1, 1], and a pixel clipped afterwards (as the samplers clip
    x_0, and any image is clipped to 0..255) would break A x = y. So the projection goes on
    alternating between the box and {x : A x = y} (each a projection, A A+ being the identity)
    until x is in the box: the two sets meet (A+ y is in both), so it converges to a point of
    both, and the result keeps the observation to within a level of rounding."""
    known = degradation.pinv(y)

    def project(x_0: torch.Tensor) -> torch.Tensor:
        x = known + x_0 - degradation.pinv(degradation.apply(x_0))
        for _ in range(BOX_ROUNDS):
            if float(x.abs().max()) <= 1.0 + 1e-4:
                break
            x = x.clamp(-1.0, 1.0)
            x = x + degradation.pinv(y - degradation.apply(x))
        return x

    return project


def projected(
    model_fn: ModelFn, schedule: NoiseSchedule, project: Callable[[torch.Tensor], torch.Tensor]
) -> ModelFn:
    """The model callable whose every predicted x_0 is projected (a learned variance, the
    output's second half, passes as it is)."""

    def fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
        out = model_fn(x_t, t)
        channels = x_t.shape[1]
        x_0, _ = schedule.predict(out, x_t, t)
        mapped = schedule.output_for(project(x_0), x_t, t)
        return torch.cat([mapped, out[:, channels:]], dim=1)

    return fn


def restoration(job: Job, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The projection of a job's restoration (job.restore): its degradation and observation
    on `device`."""
    restore = job.restore
    if restore is None:
        raise ValueError("the job is no restoration")
    if restore.operator == "mask":
        if job.source is None or job.mask is None:
            raise InputError("a DDNM inpainting needs its image and its mask")
        known = ~mask_to_tensor(job.mask, device).bool()
        return projection(masked(known), to_tensor(job.source, device) * known)
    if restore.observation is None:
        raise InputError(f"a restoration by {restore.operator} needs its observation")
    y = to_tensor(restore.observation, device)
    if restore.operator == "average":
        return projection(average(restore.factor), y)
    return projection(luminance(job.model.in_channels), y)
