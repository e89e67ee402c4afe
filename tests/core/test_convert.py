"""The papers' checkpoints, converted: guided-diffusion's own UNetModel (the test-only package
guided-diffusion-sdk) built with each preset's structure, its random weights converted, and
the outputs compared; whole DDPM (learned variance) and DDIM runs against its own loops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from diffusion_studio.core.convert import PRESETS, convert_checkpoint, flags_for, scheduler_config
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import Job, run
from diffusion_studio.core.schedule import NoiseSchedule

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    gd_unet = pytest.importorskip("guided_diffusion.unet")
    gd = pytest.importorskip("guided_diffusion.gaussian_diffusion")
    gd_respace = pytest.importorskip("guided_diffusion.respace")

# the published structure of each preset at a reduced width (model_channels), so that a test
# runs in seconds on a CPU: channel_mult, res blocks, attention at image_size // these, and the
# flags guided-diffusion was run with
STRUCTURES = {
    "repaint-celeba256": dict(model_channels=32, channel_mult=(1, 1, 2, 2, 4, 4),
                              num_res_blocks=2, attention=(32, 16, 8), resblock_updown=True),
    "adm-imagenet64": dict(model_channels=64, channel_mult=(1, 2, 3, 4), num_res_blocks=3,
                           attention=(32, 16, 8), resblock_updown=True, num_classes=10),
    "adm-imagenet128": dict(model_channels=32, channel_mult=(1, 1, 2, 3, 4), num_res_blocks=2,
                            attention=(32, 16, 8), resblock_updown=True, num_classes=10),
    "adm-imagenet256": dict(model_channels=32, channel_mult=(1, 1, 2, 2, 4, 4),
                            num_res_blocks=2, attention=(32, 16, 8), resblock_updown=True,
                            num_classes=10),
    "adm-imagenet512": dict(model_channels=64, channel_mult=(0.5, 1, 1, 2, 2, 4, 4),
                            num_res_blocks=1, attention=(32, 16, 8), resblock_updown=True,
                            num_classes=10),
    "iddpm-cifar10": dict(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=2,
                          attention=(16, 8), resblock_updown=False),
    "iddpm-imagenet64": dict(model_channels=32, channel_mult=(1, 2, 3, 4), num_res_blocks=2,
                             attention=(16, 8), resblock_updown=False),
}  # fmt: skip


def reference_unet(preset: str, seed: int = 0, learn_sigma: bool = True, **override):
    """guided-diffusion's UNetModel of a preset's structure, with random (non-zero) weights."""
    flags = PRESETS[preset]
    structure = {**STRUCTURES[preset], **override}
    torch.manual_seed(seed)
    net = gd_unet.UNetModel(
        image_size=flags.image_size,
        in_channels=3,
        model_channels=structure["model_channels"],
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=structure["num_res_blocks"],
        attention_resolutions=[flags.image_size // r for r in structure["attention"]],
        channel_mult=structure["channel_mult"],
        num_classes=structure.get("num_classes"),
        num_heads=flags.num_heads,
        num_head_channels=flags.num_head_channels,
        use_scale_shift_norm=True,
        resblock_updown=structure["resblock_updown"],
        use_new_attention_order=flags.use_new_attention_order,
    )
    with torch.no_grad():  # zero_module leaves the last convs at 0: give every weight a value
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return net.eval()


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


@pytest.mark.parametrize("preset", list(STRUCTURES))
def test_the_converted_network_is_the_original(preset: str) -> None:
    net = reference_unet(preset)
    unet, arch = convert_checkpoint(net.state_dict(), PRESETS[preset])
    size = 2 ** (len(STRUCTURES[preset]["channel_mult"]) - 1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 2 * size, 2 * size, generator=g)
    t = torch.tensor([3, 870])
    labels = torch.tensor([1, 7]) if arch.num_classes else None
    with torch.no_grad():
        theirs = net(x, t, y=labels)
        ours = unet(x, t, class_labels=labels).sample
    assert ours.shape == theirs.shape == (2, 6, 2 * size, 2 * size)
    assert relative_error(ours, theirs) <= 1e-5, relative_error(ours, theirs)


def test_a_full_width_iddpm_cifar10_network_is_the_original() -> None:
    net = reference_unet("iddpm-cifar10", model_channels=128, num_res_blocks=3)
    unet, _ = convert_checkpoint(net.state_dict(), PRESETS["iddpm-cifar10"])
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        error = relative_error(unet(x, torch.tensor([1234])).sample, net(x, torch.tensor([1234])))
    assert error <= 1e-5
    assert sum(p.numel() for p in unet.parameters()) == sum(p.numel() for p in net.parameters())


def test_the_attention_order_matters_and_is_mapped() -> None:
    """The legacy and the new qkv layouts give different networks; each is mapped to its own."""
    flags = PRESETS["adm-imagenet64"]
    net = reference_unet("adm-imagenet64")
    state = net.state_dict()
    wrong, _ = convert_checkpoint(state, flags_for("adm-imagenet64", use_new_attention_order=False))
    right, _ = convert_checkpoint(state, flags)
    x = torch.randn(1, 3, 16, 16)
    t, y = torch.tensor([500]), torch.tensor([3])
    with torch.no_grad():
        reference = net(x, t, y=y)
        assert relative_error(right(x, t, class_labels=y).sample, reference) <= 1e-5
        assert relative_error(wrong(x, t, class_labels=y).sample, reference) > 1e-3


def studio_model(net, preset: str) -> DiffusionModel:
    flags = PRESETS[preset]
    unet, arch = convert_checkpoint(net.state_dict(), flags)
    schedule = NoiseSchedule.from_config(scheduler_config(flags, arch))
    return DiffusionModel.from_unet(unet, schedule, {"name": preset})


def reference_diffusion(preset: str, timesteps: list[int]):
    flags = PRESETS[preset]
    betas = gd.get_named_beta_schedule(flags.noise_schedule, flags.diffusion_steps)
    return gd_respace.SpacedDiffusion(
        use_timesteps=set(timesteps),
        betas=betas,
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=gd.ModelVarType.LEARNED_RANGE,
        loss_type=gd.LossType.MSE,
    )


@pytest.mark.parametrize(("sampler", "steps"), [("ddpm", 25), ("ddim", 25), ("ddpm", 250)])
def test_whole_runs_match_guided_diffusions_loops(monkeypatch, sampler: str, steps: int) -> None:
    preset = "iddpm-cifar10"  # cosine schedule, T = 4000, learned variance
    net = reference_unet(preset)
    model = studio_model(net, preset)
    request = SampleRequest(sampler=sampler, num_inference_steps=steps, eta=0.0, seed=5,
                            timestep_spacing="linspace", variance_type="learned_range"
                            if sampler == "ddpm" else None)  # fmt: skip
    job = Job.prepare(request, model.info)
    timesteps = model.schedule.timesteps(steps, "linspace")
    # ours: the noise of image 0 is drawn from its generator (seed 5): x_T first, then a draw
    # per step; guided-diffusion gets the same stream through torch.randn_like
    ours = list(run(model, job))[-1].x_t
    generator = torch.Generator().manual_seed(5)
    x_T = torch.randn((1, 3, 32, 32), generator=generator)

    def same_noise(x, **kwargs):
        return torch.randn(x.shape, generator=generator)

    monkeypatch.setattr(gd.th, "randn_like", same_noise)
    diffusion = reference_diffusion(preset, timesteps)
    loop = diffusion.p_sample_loop if sampler == "ddpm" else diffusion.ddim_sample_loop
    theirs = loop(net, (1, 3, 32, 32), noise=x_T, clip_denoised=True, progress=False)
    assert float((ours - theirs).abs().max()) <= 1e-4, float((ours - theirs).abs().max())
    assert np.isfinite(ours.numpy()).all()
