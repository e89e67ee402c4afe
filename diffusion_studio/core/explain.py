"""What a run does, in the course's notation: the update rule of the chosen sampler with the
request's numbers in it, the guidance and the inpainting around it, and the timesteps the run
visits. The window's Help > What this run does shows it (Markdown)."""

from __future__ import annotations

from diffusion_studio.core.request import VARIANCE_LABELS, SampleRequest
from diffusion_studio.core.schedule import NoiseSchedule

X0_HAT = "x₀′ = (xₜ − √(1 − ᾱₜ) ε_θ(xₜ, t)) / √ᾱₜ"
PREDICTIONS = {
    "epsilon": "the network predicts the noise ε_θ(xₜ, t) (Ho et al. 2020)",
    "v_prediction": "the network predicts v = √ᾱₜ ε − √(1 − ᾱₜ) x₀ (Salimans & Ho 2022), "
    "from which ε_θ and x₀′ follow",
    "sample": "the network predicts x₀ itself, from which ε_θ follows",
}


def _timesteps(visited: list[int]) -> str:
    if len(visited) <= 8:
        return ", ".join(map(str, visited))
    head, tail = ", ".join(map(str, visited[:4])), ", ".join(map(str, visited[-2:]))
    return f"{head}, …, {tail}"


def _ddpm(request: SampleRequest, schedule: NoiseSchedule) -> list[str]:
    variance = request.variance_type or schedule.variance_type
    sigma = {
        "fixed_small": "σₜ² = βₜ′ = (1 − ᾱₜ₋₁) / (1 − ᾱₜ) · βₜ (the posterior's, beta-tilde)",
        "fixed_large": "σₜ² = βₜ (the larger choice of the paper)",
        "learned_range": "σₜ² = exp(v log βₜ + (1 − v) log βₜ′), v from the network "
        "(Nichol & Dhariwal 2021, eq. 15)",
        "learned": "log σₜ² from the network",
    }[variance]
    return [
        "**DDPM**, ancestral sampling (Ho et al. 2020, Algorithm 2): at every step a sample of "
        "the posterior q(xₜ₋₁ | xₜ, x₀′),",
        "",
        "    xₜ₋₁ = μₜ(xₜ, x₀′) + σₜ z,   z ~ N(0, I)  (no noise on the last step)",
        "    μₜ = √ᾱₜ₋₁ βₜ / (1 − ᾱₜ) · x₀′ + √αₜ (1 − ᾱₜ₋₁) / (1 − ᾱₜ) · xₜ",
        f"    {X0_HAT}",
        "",
        f"with {sigma}; variance: {VARIANCE_LABELS[variance]}. On fewer steps than T, βₜ is "
        "the step's own, 1 − ᾱₜ / ᾱₜ₋₁.",
    ]


def _ddim(request: SampleRequest) -> list[str]:
    eta = request.eta
    noise = (
        "η = 0: no noise is drawn, the same xₜ always gives the same image"
        if eta == 0
        else f"η = {eta:g}: σₜ = {eta:g} · √((1 − ᾱₜ₋₁) / (1 − ᾱₜ)) · √(1 − ᾱₜ / ᾱₜ₋₁)"
        + (" (at η = 1, DDPM's βₜ′)" if eta == 1 else "")
    )
    eps = (
        "ε re-derived from the clipped x₀′ (guided-diffusion's choice)"
        if request.use_clipped_model_output
        else "the network's ε as it came (diffusers' default)"
    )
    return [
        "**DDIM** (Song et al. 2021, eq. 12): a step from xₜ to xₜ₋₁ through the predicted "
        "clean image,",
        "",
        "    xₜ₋₁ = √ᾱₜ₋₁ x₀′ + √(1 − ᾱₜ₋₁ − σₜ²) ε_θ(xₜ, t) + σₜ z",
        f"    {X0_HAT}",
        "",
        f"with {noise}; {eps}.",
    ]


def _dpmpp_2m() -> list[str]:
    return [
        "**DPM-Solver++(2M)** (Lu et al. 2022, Algorithm 2): the diffusion ODE solved in the "
        "predicted clean image, with λₜ = log(√ᾱₜ / √(1 − ᾱₜ)) and h = λₜ₋₁ − λₜ,",
        "",
        "    xₜ₋₁ = √((1 − ᾱₜ₋₁) / (1 − ᾱₜ)) xₜ − √ᾱₜ₋₁ (e^(−h) − 1) D",
        "    D = (1 + 1/2r) x₀′ − 1/2r x₀′ of the step before,  r = h of the step before / h",
        f"    {X0_HAT}",
        "",
        "second order from the second step on (the first, and the last to the clean image, are "
        "DDIM's with η = 0); no noise is drawn: the same x_T always gives the same image.",
    ]


UPDATE_RULES = {
    "ddpm": lambda request, schedule: _ddpm(request, schedule),
    "ddim": lambda request, schedule: _ddim(request),
    "dpmpp_2m": lambda request, schedule: _dpmpp_2m(),
}


def explain(
    request: SampleRequest,
    schedule: NoiseSchedule,
    prediction_type: str,
    *,
    inpaint: bool = False,
    class_name: str | None = None,
    guided: bool = False,
) -> str:
    """Markdown: the run of `request` on a model of `schedule` and `prediction_type`, with an
    image and mask (`inpaint`), towards `class_name`, under classifier-free guidance when the
    model has a null class (`guided`)."""
    spacing = request.timestep_spacing or schedule.timestep_spacing
    visited = schedule.timesteps(request.num_inference_steps, spacing)
    T = schedule.num_train_timesteps
    lines = [
        f"## What this run does: {request.spec.label}, {request.num_inference_steps} steps",
        "",
        f"It starts from pure noise x_T ~ N(0, I) (seed {request.seed}; image i of a batch "
        f"from seed + i) and takes {len(visited)} steps down the model's T = {T} timesteps, "
        f"{spacing} spacing: t = {_timesteps([int(t) for t in visited])}. At each, "
        f"{PREDICTIONS.get(prediction_type, prediction_type)}"
        + (", and x₀′ is clipped to [−1, 1]" if schedule.clip_sample else "")
        + "; x₀′ is the predicted clean image, the live view's predicted x_0.",
        "",
        *UPDATE_RULES[request.sampler](request, schedule),
    ]
    w = request.guidance_scale
    if class_name is not None and guided and w not in (0, 1):
        lines += [
            "",
            f"**Classifier-free guidance** (Ho & Salimans 2022) towards {class_name}, w = {w:g}: "
            "the network sees the class c and the null class ∅ (one batch of 2N a step),",
            "",
            "    ε_w = ε_θ(xₜ, ∅) + w (ε_θ(xₜ, c) − ε_θ(xₜ, ∅))",
        ]
    elif class_name is not None:
        lines += [
            "",
            f"The class is {class_name}" + (" (w = 0: unconditional)." if w == 0 else "."),
        ]
    if request.classifier_scale:
        lines += [
            "",
            f"**Classifier guidance** (Dhariwal & Nichol 2021), s = {request.classifier_scale:g}: "
            "a noise-aware classifier's gradient pushes each step towards the class,",
            "",
            "    ε_s = ε − s √(1 − ᾱₜ) ∇ₓ log p_φ(y | xₜ)   (DDIM; DDPM moves its mean by σₜ² s ∇)",
        ]
    if inpaint:
        lines += [
            "",
            f"**RePaint** (Lugmayr et al. 2022): after every step the known pixels (mask m = 0) "
            f"are put back, noised to the step's level; every {request.jump_length} steps the "
            f"run goes back up and redoes them, {request.jump_n_sample} times in all, so the "
            "two parts agree at their edges:",
            "",
            "    xₜ₋₁ = m ⊙ xₜ₋₁(generated) + (1 − m) ⊙ xₜ₋₁(known),   "
            "xₜ₋₁(known) ~ q(xₜ₋₁ | x₀) = N(√ᾱₜ₋₁ x₀, (1 − ᾱₜ₋₁) I)",
            "    going back up: xₜ ~ q(xₜ | xₜ₋₁) = N(√(1 − βₜ) xₜ₋₁, βₜ I)",
        ]
    return "\n".join(lines) + "\n"
