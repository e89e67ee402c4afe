"""The sampler panel's settings in a person's words: those a restored request could not
take, and those that differ from the model's opening request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffusion_studio.core.request import SampleRequest

if TYPE_CHECKING:
    from diffusion_studio.ui.sampler_panel import SamplerPanel

SETTING_LABELS = {  # the request's fields as the panel names them
    "sampler": "sampler",
    "num_inference_steps": "steps",
    "eta": "eta",
    "use_clipped_model_output": "noise from the clipped x0",
    "timestep_spacing": "spacing",
    "variance_type": "variance",
    "seed": "seed",
    "batch_size": "batch",
    "class_label": "class",
    "guidance_scale": "guidance",
    "classifier_scale": "classifier scale",
    "jump_length": "jump length",
    "jump_n_sample": "resamples",
    "precision": "precision",
}


def differences(panel: SamplerPanel, request: SampleRequest) -> list[str]:
    """The settings of `request` that the panel's fields could not show (a value beyond a field's
    range, a class this model lacks), as "name value" for a message."""
    shown = panel.request()
    missed = []
    for name, wanted in request.to_dict().items():
        if wanted is None and name in ("timestep_spacing", "variance_type", "precision"):
            continue  # the model's default, which the field shows
        if getattr(shown, name) != wanted:
            missed.append(f"{name.replace('_', ' ')} {wanted}")
    return missed


def settings_beside(panel: SamplerPanel, baseline: SampleRequest) -> list[str]:
    """The panel's fields that show another value than `baseline` (the model's opening request),
    as "name value", in the panel's order, for a person."""
    shown = panel.request()
    said = []
    for name, label in SETTING_LABELS.items():
        value, usual = getattr(shown, name), getattr(baseline, name)
        if value == usual or (name in ("eta", "use_clipped_model_output", "variance_type")
                              and name not in shown.spec.options):  # fmt: skip
            continue
        if name == "class_label":
            value = panel.class_box.currentText()
        elif name == "variance_type":
            value = panel.variance.currentText()
        elif isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, float):
            value = f"{value:g}"
        said.append(f"{label} {value}")
    return said
