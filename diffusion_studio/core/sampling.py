"""DDPM, DDIM and DPM-Solver++(2M) sampling, as generators over a model callable (guidance,
classifier-free and by a classifier, is core/guidance.py's).

A sampler never sees a UNet: it calls `model_fn(x_t, t)`, which returns the network output of the
schedule's prediction_type (the adapter lives in core/model.py). Every network call yields one
`Step`. Tensors are (N, C, H, W) float32 in [-1, 1]; the only randomness is the torch.Generator
passed in (one per image), on the CPU so that the same seed draws the same noise on every device.

An update is one step for one network call, which the loop (walk) makes and hands it: a solver
that would call the network more than once a step (Heun, singlestep DPM-Solver) is not one of
these. What a multistep solver needs of the steps before travels as its state, which a move up
(RePaint's jumps back) empties and a fork takes along.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

import torch

from diffusion_studio.core.guidance import ClassifierGrad, ModelFn
from diffusion_studio.core.moves import Move, descent
from diffusion_studio.core.request import SAMPLERS, VarianceType
from diffusion_studio.core.schedule import NoiseSchedule


@dataclass(frozen=True)
class SolverState:
    """What a solver carries from one step to the next: DPM-Solver++(2M)'s x_0 of the step
    before and the timestep it was predicted at, DDPM's posterior variance (its last step takes
    the step before's, as guided-diffusion clips it). Empty for DDIM, at a run's start and
    again after RePaint jumps back up: a move up ends every solver's history. An update calls
    the network once; a solver that needs more of the past keeps it here, never a second call."""

    x0: torch.Tensor | None = None
    t: int | None = None
    variance: float | None = None

    def to(self, device: torch.device) -> SolverState:
        return self if self.x0 is None else replace(self, x0=self.x0.to(device))

    def kept(self) -> SolverState:
        """A copy that later steps cannot change (a fork's start)."""
        return self if self.x0 is None else replace(self, x0=self.x0.detach().clone())

    @property
    def nbytes(self) -> int:
        return 0 if self.x0 is None else self.x0.numel() * self.x0.element_size()


NO_STATE = SolverState()

Update = Callable[
    [torch.Tensor, torch.Tensor, int, int, SolverState],
    tuple[torch.Tensor, torch.Tensor, SolverState],
]
"""One reverse step: (model_output, x_t, t, t_prev, state) -> (x_{t_prev}, x0_pred, state);
t_prev = -1 ends."""


@dataclass(frozen=True)
class Step:
    """One network call of a sampler.

    index: 0-based count of network calls so far; total: how many the run makes.
    timestep: the training timestep the network saw.
    x_t: the sample after this step's update, (N, C, H, W); on the last step, the result.
    x0_pred: the model's estimate of the clean image at this step, (N, C, H, W).
    position: the moves of the call plan done after this step (a run taken up here starts
    there); state: the solver's state after it. With x_t and the generators' states these are
    all a run needs to go on from here (core.run.Start).
    """

    index: int
    total: int
    timestep: int
    x_t: torch.Tensor
    x0_pred: torch.Tensor
    position: int = -1
    state: SolverState = NO_STATE


Generators = torch.Generator | Sequence[torch.Generator]
"""One generator for the whole batch, or one per image (image i's noise from generators[i])."""


def randn_like(x: torch.Tensor, generators: Generators) -> torch.Tensor:
    """Standard normal noise shaped like x (N, ...), drawn on the generators' device, moved to x's.

    With one generator per image, image i's noise does not depend on the batch it is in.
    """
    if isinstance(generators, torch.Generator):
        g = generators
        return torch.randn(x.shape, generator=g, device=g.device, dtype=x.dtype).to(x.device)
    if len(generators) != x.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {x.shape[0]}")
    one = (1, *x.shape[1:])
    noise = [torch.randn(one, generator=g, device=g.device, dtype=x.dtype) for g in generators]
    return torch.cat(noise).to(x.device)


def ddpm_update(
    schedule: NoiseSchedule,
    generator: Generators,
    variance_type: VarianceType | None = None,
    classifier_grad: ClassifierGrad | None = None,
) -> Update:
    """Ancestral sampling, Ho et al. 2020 Algorithm 2, over any descending sub-sequence.

    variance_type "fixed_small" draws with beta-tilde (the posterior variance), "fixed_large"
    with the (effective) beta; "learned_range" with the network's interpolation v between the
    two logs (Nichol & Dhariwal 2021, eq. 15: Sigma = exp(v log beta + (1 - v) log beta-tilde),
    v = (out + 1) / 2, from the second half of the output's channels), "learned" with its log
    variance itself. On a respaced chain beta is the step's effective 1 - ab_t / ab_prev, as
    guided-diffusion's respace.py makes it. None takes the model's. No noise on the last step.

    With `classifier_grad` the mean moves by Sigma s grad log p(y | x_t) (Dhariwal & Nichol,
    Algorithm 1); on the last step, whose posterior variance is 0, Sigma is that of the step
    before (guided-diffusion's clipped log variance), which the state carries.
    """
    variance_type = variance_type or schedule.variance_type
    return partial(_ddpm_update, schedule, generator, variance_type, classifier_grad)


def _ddpm_update(
    schedule: NoiseSchedule,
    generator: Generators,
    variance_type: VarianceType,
    classifier_grad: ClassifierGrad | None,
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    state: SolverState = NO_STATE,
) -> tuple[torch.Tensor, torch.Tensor, SolverState]:
    # 1. x_0 and eps from the network output (eq. 15), clipped if the model asks for it
    x0_pred, _ = schedule.predict(model_output, x_t, t)
    # 2. posterior mean of q(x_{t-1} | x_t, x_0) (eq. 7) and its variance
    mean, beta_tilde = schedule.posterior(x0_pred, x_t, t, t_prev)
    last = t_prev < 0
    if last and state.variance is not None:  # the step before's (guided-diffusion's clipping)
        beta_tilde = state.variance
    beta = 1 - schedule.alpha_bar(t) / schedule.alpha_bar(t_prev)
    if last and variance_type == "fixed_large":
        beta = beta_tilde
    if variance_type in ("fixed_small", "fixed_large"):
        log_variance: torch.Tensor | float = math.log(
            beta_tilde if variance_type == "fixed_small" else beta
        )
    else:
        learned = model_output[:, x_t.shape[1] :]
        if learned.shape[1] != x_t.shape[1]:
            raise ValueError(f"a {variance_type} variance needs 2C output channels")
        if variance_type == "learned":  # the log variance itself
            log_variance = learned
        else:  # interpolate the logs (eq. 15)
            frac = (learned + 1) / 2
            log_variance = frac * math.log(beta) + (1 - frac) * math.log(beta_tilde)
    if classifier_grad is not None:  # Dhariwal & Nichol, Algorithm 1: mu + s Sigma grad
        variance = torch.exp(torch.as_tensor(log_variance, dtype=x_t.dtype, device=x_t.device))
        if not (last and variance_type == "fixed_small"):  # beta-tilde is 0 there
            mean = mean + variance * classifier_grad(x_t, t)
    # in float32, as it has always been carried: a record remakes its image bit for bit
    carried = SolverState(variance=torch.tensor(beta_tilde).item())
    if last:
        return mean, x0_pred, carried
    # 3. x_{t-1} = mean + sigma z (Algorithm 2, line 4)
    sigma = torch.exp(0.5 * torch.as_tensor(log_variance, dtype=x_t.dtype, device=x_t.device))
    return mean + sigma * randn_like(x_t, generator), x0_pred, carried


def ddim_update(
    schedule: NoiseSchedule,
    generator: Generators,
    eta: float,
    use_clipped_model_output: bool = True,
    classifier_grad: ClassifierGrad | None = None,
) -> Update:
    """DDIM, Song et al. 2021 (https://arxiv.org/abs/2010.02502), eq. 12 with sigma of eq. 16.

    eta = 0 is the deterministic DDIM; eta = 1 is DDPM with the posterior variance (exactly,
    with use_clipped_model_output: the noise re-derived from the clipped x_0; see
    NoiseSchedule.predict). Any sub-sequence works, evenly spaced or not: the previous
    timestep is the one passed in. With `classifier_grad` the noise is
    eps - sqrt(1 - ab_t) s grad log p(y | x_t) (Dhariwal & Nichol, Algorithm 2), and x_0 follows.
    """
    return partial(
        _ddim_update, schedule, generator, eta, use_clipped_model_output, classifier_grad
    )


def _ddim_update(
    schedule: NoiseSchedule,
    generator: Generators,
    eta: float,
    use_clipped_model_output: bool,
    classifier_grad: ClassifierGrad | None,
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    state: SolverState = NO_STATE,
) -> tuple[torch.Tensor, torch.Tensor, SolverState]:
    alpha_prod_t, alpha_prod_t_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    # 1. predicted x_0 and eps, the "predicted x_0" term of eq. 12
    x0_pred, eps = schedule.predict(model_output, x_t, t, use_clipped_model_output)
    if classifier_grad is not None:  # the conditional score (Algorithm 2), x_0 from it
        x0_pred, eps = _guided(eps, x_t, t, alpha_prod_t, classifier_grad)
    # 2. sigma_t(eta), eq. 16
    std_dev_t = (
        eta
        * ((1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev))
        ** 0.5
    )
    # 3. "direction pointing to x_t" of eq. 12
    direction = max(1 - alpha_prod_t_prev - std_dev_t**2, 0.0) ** 0.5 * eps
    x_prev = alpha_prod_t_prev**0.5 * x0_pred + direction
    # 4. random noise, eq. 12's last term (zero on the last step, where alpha_prod_t_prev = 1)
    if std_dev_t > 0:
        x_prev = x_prev + std_dev_t * randn_like(x_t, generator)
    return x_prev, x0_pred, NO_STATE


def _guided(
    eps: torch.Tensor, x_t: torch.Tensor, t: int, alpha_bar_t: float, gradient: ClassifierGrad
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier guidance on a deterministic sampler's noise (Dhariwal & Nichol, Algorithm 2):
    eps - sqrt(1 - ab_t) s grad log p(y | x_t), and the x_0 it implies."""
    eps = eps - (1 - alpha_bar_t) ** 0.5 * gradient(x_t, t)
    return (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t**0.5, eps


def dpmpp_2m_update(
    schedule: NoiseSchedule,
    generator: Generators,
    classifier_grad: ClassifierGrad | None = None,
) -> Update:
    """DPM-Solver++(2M), Lu et al. 2022 (https://arxiv.org/abs/2211.01095), Algorithm 2: a
    multistep solver of the diffusion ODE in data prediction, second order from the second
    step on (the x_0 predicted one step before is its state), first order (DDIM with eta 0)
    on the first step, after a jump back up (RePaint) and on the last step to the clean image.

    With lambda = log(alpha / sigma), alpha^2 = alpha-bar, sigma^2 = 1 - alpha-bar, a step
    from t to t_next of length h = lambda_next - lambda_t goes to
    x = (sigma_next / sigma_t) x_t - alpha_next (e^-h - 1) D, D = (1 + 1/2r) x0 - 1/2r x0_before,
    r = h_before / h (diffusers' DPMSolverMultistepScheduler, "dpmsolver++", order 2,
    "midpoint"). Deterministic: the generator is not used. With `classifier_grad` the noise is
    eps - sigma_t s grad log p(y | x_t), as for DDIM, and x_0 follows."""
    return partial(_dpmpp_2m_update, schedule, classifier_grad)


def _dpmpp_2m_update(
    schedule: NoiseSchedule,
    classifier_grad: ClassifierGrad | None,
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    state: SolverState = NO_STATE,
) -> tuple[torch.Tensor, torch.Tensor, SolverState]:
    alpha_bar_t, alpha_bar_next = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    x0_pred, eps = schedule.predict(model_output, x_t, t)
    if classifier_grad is not None:  # the conditional score, x_0 from it (as DDIM)
        x0_pred, eps = _guided(eps, x_t, t, alpha_bar_t, classifier_grad)
    if t_prev < 0:  # to sigma = 0: the first-order step lands on x_0 itself
        return x0_pred, x0_pred, NO_STATE
    h = _log_snr_half(alpha_bar_next) - _log_snr_half(alpha_bar_t)
    d = x0_pred
    if state.x0 is not None and state.t is not None:  # second order: the x_0 one step before
        x0_before, t_before = state.x0, state.t
        h_before = _log_snr_half(alpha_bar_t) - _log_snr_half(schedule.alpha_bar(t_before))
        half_over_r = 0.5 * h / h_before
        d = (1 + half_over_r) * x0_pred - half_over_r * x0_before
    sigma_ratio = ((1 - alpha_bar_next) / (1 - alpha_bar_t)) ** 0.5
    x_next = sigma_ratio * x_t - alpha_bar_next**0.5 * math.expm1(-h) * d
    return x_next, x0_pred, SolverState(x0=x0_pred, t=t)


def _log_snr_half(alpha_bar: float) -> float:
    """lambda = log(alpha / sigma) = log(alpha-bar / (1 - alpha-bar)) / 2."""
    return 0.5 * math.log(alpha_bar / (1 - alpha_bar))


UPDATES: dict[str, Callable[..., Update]] = {
    "ddpm_update": ddpm_update,
    "ddim_update": ddim_update,
    "dpmpp_2m_update": dpmpp_2m_update,
}
"""The update factories by the name the sampler table (core/request.py) gives them."""


Renoise = Callable[[torch.Tensor, int, int], torch.Tensor]
"""(x_t, t, t_up) -> x_{t_up} ~ q(x_{t_up} | x_t): a move up."""

Merge = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
"""(x_{t_next}, x0_pred, t_next) -> both with the known region put back (RePaint)."""


@torch.inference_mode()
def walk(
    model_fn: ModelFn,
    x: torch.Tensor,
    moves: Sequence[Move],
    update: Update,
    *,
    position: int = 0,
    calls_done: int = 0,
    state: SolverState = NO_STATE,
    renoise: Renoise | None = None,
    merge: Merge | None = None,
) -> Iterator[Step]:
    """The one loop of every run: along `moves` from `position` (x at that point, after
    `calls_done` network calls, with the solver's `state`), one Step per move down. A move up
    re-noises (`renoise`) and ends a multistep solver's history; after a move down `merge`
    puts a known region back. A plain run is moves down from x_T, from position 0."""
    total = sum(1 for t, t_next in moves if t_next < t)
    index = calls_done
    for done, (t, t_next) in enumerate(moves[position:], start=position + 1):
        if t_next > t:
            if renoise is None:
                raise ValueError("a move up needs renoise")
            x, state = renoise(x, t, t_next), NO_STATE
            continue
        x, x0_pred, state = update(model_fn(x, t), x, t, t_next, state)
        if merge is not None:
            x, x0_pred = merge(x, x0_pred, t_next)
        yield Step(index, total, t, x, x0_pred, done, state)
        index += 1


def sample(
    model_fn: ModelFn, x_T: torch.Tensor, timesteps: Sequence[int], update: Update
) -> Iterator[Step]:
    """Run a reverse process from x_T over descending `timesteps`, one Step per network call."""
    return walk(model_fn, x_T, descent(timesteps), update)


def make_update(
    sampler: str,
    schedule: NoiseSchedule,
    generators: Generators,
    options: dict,
    classifier_grad: ClassifierGrad | None = None,
) -> Update:
    """The update of a sampler of the table in core/request.py, with its options by name (and
    classifier guidance's term, which every sampler takes)."""
    factory = UPDATES[SAMPLERS[sampler].update]
    return factory(schedule, generators, **options, classifier_grad=classifier_grad)


Window = tuple[int, int]
"""A window of the model's size on a larger canvas: its (top, left) in pixels."""


def tiled(model_fn: ModelFn, windows: Sequence[Window], size: tuple[int, int]) -> ModelFn:
    """MultiDiffusion (Bar-Tal et al. 2023, https://arxiv.org/abs/2302.08113): the model
    callable of a canvas larger than the model, each window of `size` (height, width) denoised
    by the model and the outputs averaged where windows overlap; the canvas's pixels must all
    be in some window (those in none get 0). With one window the canvas is the model's."""
    height, width = size

    def fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
        total: torch.Tensor | None = None
        count = torch.zeros((1, 1, *x_t.shape[2:]), device=x_t.device, dtype=x_t.dtype)
        for top, left in windows:
            place = (..., slice(top, top + height), slice(left, left + width))
            out = model_fn(x_t[place], t)
            if total is None:
                total = x_t.new_zeros((x_t.shape[0], out.shape[1], *x_t.shape[2:]))
            total[place] += out
            count[place] += 1
        if total is None:
            raise ValueError("a tiled model needs at least one window")
        return total / count.clamp(min=1)

    return fn
