"""Noise schedules and the forward process of DDPM (Ho et al. 2020, https://arxiv.org/abs/2006.11239).

Timesteps are 0-based as in diffusers: `alphas_cumprod[t]`, t in 0..T-1, is the DDPM paper's
alpha-bar_{t+1}, and the alpha-bar "before step 0" (t = -1, the clean image) is 1.
Constants are computed in float64; per-step coefficients leave as Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.limits import MAX_TRAIN_TIMESTEPS

if TYPE_CHECKING:  # the tables are numpy's: the window reads a schedule without torch
    import torch

from diffusion_studio.core.request import (
    LEARNED_VARIANCES,
    TIMESTEP_SPACINGS,
    VARIANCE_TYPES,
    TimestepSpacing,
    VarianceType,
)

BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]
PredictionType = Literal["epsilon", "v_prediction", "sample"]

BETA_SCHEDULES: tuple[str, ...] = get_args(BetaSchedule)
PREDICTION_TYPES: tuple[str, ...] = get_args(PredictionType)

# diffusers' "*_log" variants differ from these only in how the variance is stored.
_VARIANCE_ALIASES = {"fixed_small_log": "fixed_small", "fixed_large_log": "fixed_large"}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _config_value(
    config: Mapping[str, Any], key: str, default: float, kind: type, low: float, high: float
) -> Any:
    """config[key] (or the default, when the key is absent) as `kind`, checked to be in
    [low, high]; null is refused, not taken for the default (a file that says null for T has
    lost it)."""
    value = config.get(key, default)
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not _is_number(value) or (kind is int and not whole) or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        raise InputError(f"{key} must be {what} from {low:g} to {high:g}, got {value!r}")
    return kind(value)


def _config_choice(
    config: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]
) -> str:
    value = config.get(key, default)
    if value not in choices:
        raise InputError(f"{key} {value!r} is not supported; use one of {', '.join(choices)}")
    return str(value)


def make_betas(
    beta_schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float
) -> np.ndarray:
    """Beta schedule (T,) float64, with diffusers' meaning of each name."""
    T = num_train_timesteps
    if beta_schedule == "linear":  # DDPM, sec. 4
        return np.linspace(beta_start, beta_end, T, dtype=np.float64)
    if beta_schedule == "scaled_linear":  # latent diffusion
        return np.linspace(beta_start**0.5, beta_end**0.5, T, dtype=np.float64) ** 2
    if beta_schedule == "squaredcos_cap_v2":
        # Nichol & Dhariwal 2021 (https://arxiv.org/abs/2102.09672), eq. 17, s = 0.008,
        # betas capped at 0.999 so the last step does not divide by alpha-bar = 0.
        def f(u: np.ndarray) -> np.ndarray:
            return np.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        steps = np.arange(T, dtype=np.float64)
        return np.minimum(1 - f((steps + 1) / T) / f(steps / T), 0.999)
    raise InputError(
        f"beta_schedule {beta_schedule!r} is not supported; use one of {', '.join(BETA_SCHEDULES)}"
    )


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A trained model's noise schedule and the sampler options that come with it.

    Built from a diffusers scheduler_config dict with `from_config`; `to_config` writes one back.
    """

    betas: np.ndarray
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: PredictionType = "epsilon"
    variance_type: VarianceType = "fixed_small"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    timestep_spacing: TimestepSpacing = "leading"
    steps_offset: int = 0
    trained_betas: bool = False
    alphas_cumprod: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        betas = np.asarray(self.betas, dtype=np.float64)
        if betas.ndim != 1 or len(betas) < 2 or not np.all((betas > 0) & (betas < 1)):
            raise InputError("betas must be a list of at least two values in (0, 1)")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas_cumprod", np.cumprod(1.0 - betas))

    @classmethod
    def linear(cls, num_train_timesteps: int = 1000) -> NoiseSchedule:
        """The DDPM paper's schedule: betas from 1e-4 to 0.02 over T steps."""
        return cls.from_config({"num_train_timesteps": num_train_timesteps})

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NoiseSchedule:
        """From a diffusers scheduler_config (DDPMScheduler, DDIMScheduler...) and its defaults.

        Every value is checked for its type and range; InputError names the key.
        """
        T = _config_value(config, "num_train_timesteps", 1000, int, 2, MAX_TRAIN_TIMESTEPS)
        beta_start = _config_value(config, "beta_start", 1e-4, float, 0.0, 1.0)
        beta_end = _config_value(config, "beta_end", 0.02, float, 0.0, 1.0)
        beta_schedule = _config_choice(config, "beta_schedule", "linear", BETA_SCHEDULES)
        trained = config.get("trained_betas")
        if trained is not None:
            if (
                not isinstance(trained, list)
                or not 2 <= len(trained) <= MAX_TRAIN_TIMESTEPS
                or not all(_is_number(b) for b in trained)
            ):
                raise InputError(
                    f"trained_betas must be a list of 2 to {MAX_TRAIN_TIMESTEPS:,} numbers"
                )
            betas = np.asarray(trained, dtype=np.float64)
        else:
            betas = make_betas(beta_schedule, T, beta_start, beta_end)
        prediction_type = _config_choice(config, "prediction_type", "epsilon", PREDICTION_TYPES)
        variance_type = config.get("variance_type") or "fixed_small"
        variance_type = _VARIANCE_ALIASES.get(variance_type, variance_type)
        if variance_type not in VARIANCE_TYPES:
            raise InputError(
                f"variance_type {variance_type!r} is not supported; "
                f"use one of {', '.join(VARIANCE_TYPES)}"
            )
        spacing = config.get("timestep_spacing", "leading")
        if spacing not in TIMESTEP_SPACINGS:
            spacing = "leading"  # diffusers has others (e.g. for Karras sigmas); take the default
        clip_sample = config.get("clip_sample", True)
        if not isinstance(clip_sample, bool):
            raise InputError(f"clip_sample must be true or false, got {clip_sample!r}")
        return cls(
            betas=betas,
            beta_schedule=beta_schedule,
            beta_start=beta_start,
            beta_end=beta_end,
            prediction_type=prediction_type,  # type: ignore[arg-type]
            variance_type=variance_type,  # type: ignore[arg-type]
            clip_sample=clip_sample,
            clip_sample_range=_config_value(config, "clip_sample_range", 1.0, float, 1e-6, 1e6),
            timestep_spacing=spacing,  # type: ignore[arg-type]
            steps_offset=_config_value(config, "steps_offset", 0, int, 0, T - 1),
            trained_betas=trained is not None,
        )

    def to_config(self) -> dict[str, Any]:
        """A diffusers DDPMScheduler config that rebuilds this schedule."""
        return {
            "_class_name": "DDPMScheduler",
            "num_train_timesteps": self.num_train_timesteps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "beta_schedule": self.beta_schedule,
            "trained_betas": self.betas.tolist() if self.trained_betas else None,
            "variance_type": self.variance_type,
            "clip_sample": self.clip_sample,
            "clip_sample_range": self.clip_sample_range,
            "prediction_type": self.prediction_type,
            "timestep_spacing": self.timestep_spacing,
            "steps_offset": self.steps_offset,
        }

    @property
    def num_train_timesteps(self) -> int:
        return len(self.betas)

    @property
    def learns_variance(self) -> bool:
        """The network outputs a variance too (IDDPM): twice the image's channels."""
        return self.variance_type in LEARNED_VARIANCES

    def alpha_bar(self, t: int) -> float:
        """alpha-bar at timestep t; 1 for t < 0 (the clean image)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def q_sample(
        self, x_0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor
    ) -> torch.Tensor:
        """Forward process q(x_t | x_0), DDPM eq. 4: sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise.

        x_0 and noise (N, C, H, W); t an int or a (N,) integer tensor, one timestep per image.
        """
        if isinstance(t, int):
            a = self.alpha_bar(t)
            return a**0.5 * x_0 + (1 - a) ** 0.5 * noise
        import torch

        ab = torch.as_tensor(self.alphas_cumprod, dtype=x_0.dtype, device=x_0.device)[t]
        ab = ab.view(-1, *([1] * (x_0.ndim - 1)))
        return ab.sqrt() * x_0 + (1 - ab).sqrt() * noise

    def posterior(
        self, x_0: torch.Tensor, x_t: torch.Tensor, t: int, t_prev: int
    ) -> tuple[torch.Tensor, float]:
        """Posterior q(x_{t_prev} | x_t, x_0), DDPM eq. 6-7, for any t_prev < t (respacing).

        Returns the mean and beta-tilde, the variance. With t_prev = t - 1 this is the paper's;
        a longer stride uses the effective beta 1 - ab_t / ab_prev (as guided-diffusion's
        SpacedDiffusion and diffusers' DDPMScheduler do).
        """
        ab_t, ab_prev = self.alpha_bar(t), self.alpha_bar(t_prev)
        beta_t = 1 - ab_t / ab_prev
        coef_x0 = ab_prev**0.5 * beta_t / (1 - ab_t)
        coef_xt = (1 - beta_t) ** 0.5 * (1 - ab_prev) / (1 - ab_t)
        beta_tilde = max((1 - ab_prev) / (1 - ab_t) * beta_t, 1e-20)
        return coef_x0 * x_0 + coef_xt * x_t, beta_tilde

    def predict(
        self,
        model_output: torch.Tensor,
        x_t: torch.Tensor,
        t: int,
        use_clipped_model_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The predicted x_0 and noise from a network output of this schedule's prediction_type.

        x_0 is clipped to +-clip_sample_range when the config asks for it. With
        use_clipped_model_output the noise is then re-derived from the clipped x_0, so DDIM
        with eta = 1 is exactly DDPM (guided-diffusion's choice, and diffusers'
        use_clipped_model_output=True); without it the noise stays the network's (diffusers'
        DDIMScheduler.step default). DDPM uses x_0 only, so the choice matters for DDIM.
        """
        model_output = model_output[:, : x_t.shape[1]]  # a learned variance's half is not x0's
        ab = self.alpha_bar(t)
        sqrt_ab, sqrt_one_minus_ab = ab**0.5, (1 - ab) ** 0.5
        if self.prediction_type == "epsilon":
            eps = model_output
            x_0 = (x_t - sqrt_one_minus_ab * eps) / sqrt_ab
        elif (
            self.prediction_type == "v_prediction"
        ):  # Salimans & Ho 2022, v = sqrt(ab) eps - sqrt(1-ab) x_0
            x_0 = sqrt_ab * x_t - sqrt_one_minus_ab * model_output
            eps = sqrt_ab * model_output + sqrt_one_minus_ab * x_t
        else:
            x_0 = model_output
            eps = (x_t - sqrt_ab * x_0) / sqrt_one_minus_ab
        if self.clip_sample:
            x_0 = x_0.clamp(-self.clip_sample_range, self.clip_sample_range)
            if use_clipped_model_output:
                eps = (x_t - sqrt_ab * x_0) / sqrt_one_minus_ab
        return x_0, eps

    def output_for(self, x_0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """The network output, of this schedule's prediction_type, whose predicted x_0 at
        (x_t, t) is `x_0`: predict's inverse (the noise implied by x_0, or v from it)."""
        ab = self.alpha_bar(t)
        sqrt_ab, sqrt_one_minus_ab = ab**0.5, (1 - ab) ** 0.5
        if self.prediction_type == "sample":
            return x_0
        eps = (x_t - sqrt_ab * x_0) / sqrt_one_minus_ab
        if self.prediction_type == "v_prediction":
            return sqrt_ab * eps - sqrt_one_minus_ab * x_0
        return eps

    def timesteps(
        self,
        num_inference_steps: int,
        spacing: TimestepSpacing | None = None,
        top: int | None = None,
    ) -> list[int]:
        """A descending sub-sequence of S = num_inference_steps training timesteps.

        leading, trailing and linspace have diffusers' meanings (steps_offset applies to leading
        only). quadratic is the DDIM paper's CIFAR10 choice, tau_i = floor(c i^2) (App. D.2), with
        c chosen so the last is T - 1 and equal neighbours pushed apart so all S are distinct.
        Trailing and quadratic give exactly S distinct steps starting at T - 1, for every S.

        With `top` (a fork: a run taken up at timestep `top`), the steps are spaced over 0..top
        as if T were top + 1, and start at top: leading, which would start below it, is
        trailing there.
        """
        T, S = self.num_train_timesteps, num_inference_steps
        spacing = spacing or self.timestep_spacing
        if top is not None:
            T, spacing = top + 1, ("trailing" if spacing == "leading" else spacing)
        if not 1 <= S <= T:
            raise InputError(
                f"steps must be between 1 and {T} (the model's training steps), got {S}"
            )
        if spacing == "leading":
            steps = np.arange(S) * (T // S) + self.steps_offset
        elif spacing == "trailing":
            # diffusers' round(arange(T, 0, -T / S)) - 1, in integers: its float arange makes
            # S + 1 steps for some S (61 of T = 1000); here round(T k / S) - 1, half to even
            # as np.round, for k = 1..S
            quotient, remainder = np.divmod(T * np.arange(1, S + 1, dtype=np.int64), S)
            up = (2 * remainder > S) | ((2 * remainder == S) & (quotient % 2 == 1))
            steps = quotient + up - 1
        elif spacing == "linspace":
            steps = np.round(np.linspace(0, T - 1, S)).astype(np.int64)
        elif spacing == "quadratic":
            # floor(i^2 (T - 1) / (S - 1)^2) in integers, so the last is T - 1 exactly
            i = np.arange(S, dtype=np.int64)
            steps = i * i * (T - 1) // (S - 1) ** 2 if S > 1 else np.array([T - 1])
            for k in range(1, S):
                steps[k] = max(steps[k], steps[k - 1] + 1)
        else:
            raise InputError(
                f"unknown timestep spacing {spacing!r}; use {', '.join(TIMESTEP_SPACINGS)}"
            )
        steps = np.clip(steps, 0, T - 1)
        return [int(t) for t in steps[::-1]]
