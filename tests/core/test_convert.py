"""The papers' checkpoints, converted: guided-diffusion's own UNetModel (the test-only package
guided-diffusion-sdk) built with each preset's structure, its random weights converted, and
the outputs compared; whole DDPM (learned variance) and DDIM runs against its own loops."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffusion_studio.core.convert import convert_checkpoint
from diffusion_studio.core.job import Job
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.openai_configs import scheduler_config
from diffusion_studio.core.openai_flags import PRESETS, flags_for
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run
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


def their_timesteps(preset: str, t: torch.Tensor) -> torch.Tensor:
    """The timesteps their network sees: improved-diffusion's scripts (IDDPM's presets)
    rescale t by 1000 / T before the network (rescale_timesteps)."""
    flags = PRESETS[preset]
    return t.float() * (1000.0 / flags.diffusion_steps) if flags.rescale_timesteps else t


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
        theirs = net(x, their_timesteps(preset, t), y=labels)
        ours = unet(x, t, class_labels=labels).sample
    assert ours.shape == theirs.shape == (2, 6, 2 * size, 2 * size)
    assert relative_error(ours, theirs) <= 1e-5, relative_error(ours, theirs)


def test_a_full_width_iddpm_cifar10_network_is_the_original() -> None:
    net = reference_unet("iddpm-cifar10", model_channels=128, num_res_blocks=3)
    unet, _ = convert_checkpoint(net.state_dict(), PRESETS["iddpm-cifar10"])
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        t = torch.tensor([1234])
        error = relative_error(unet(x, t).sample, net(x, their_timesteps("iddpm-cifar10", t)))
    assert error <= 1e-5
    assert sum(p.numel() for p in unet.parameters()) == sum(p.numel() for p in net.parameters())


def test_the_attention_order_matters_and_is_mapped() -> None:
    """The legacy and the new qkv layouts give different networks; each is mapped to its own."""
    flags = PRESETS["adm-imagenet64"]
    net = reference_unet("adm-imagenet64")
    state = net.state_dict()
    wrong, _ = convert_checkpoint(
        state, flags_for("adm-imagenet64", {"use_new_attention_order": False})
    )
    right, _ = convert_checkpoint(state, flags)
    x = torch.randn(1, 3, 16, 16)
    t, y = torch.tensor([500]), torch.tensor([3])
    with torch.no_grad():
        reference = net(x, t, y=y)
        assert relative_error(right(x, t, class_labels=y).sample, reference) <= 1e-5
        assert relative_error(wrong(x, t, class_labels=y).sample, reference) > 1e-3


def studio_model(net, preset: str, **changes) -> DiffusionModel:
    flags = replace(PRESETS[preset], **changes)
    unet, arch = convert_checkpoint(net.state_dict(), flags)
    schedule = NoiseSchedule.from_config(scheduler_config(flags, arch))
    return DiffusionModel.from_unet(unet, schedule, {"name": preset})


def reference_diffusion(preset: str, timesteps: list[int], **changes):
    flags = replace(PRESETS[preset], **changes)
    betas = gd.get_named_beta_schedule(flags.noise_schedule, flags.diffusion_steps)
    return gd_respace.SpacedDiffusion(
        use_timesteps=set(timesteps),
        betas=betas,
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=gd.ModelVarType.LEARNED_RANGE,
        loss_type=gd.LossType.MSE,
        rescale_timesteps=flags.rescale_timesteps,  # improved-diffusion's scripts: True
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
    difference = float((ours - theirs).abs().max())
    print(f"{sampler} {steps} steps: max |ours - guided-diffusion| = {difference:.2e}")
    assert difference <= 1e-4, difference
    assert np.isfinite(ours.numpy()).all()


def test_convert_writes_a_folder_that_opens_and_inpaints(tmp_path, capsys) -> None:
    from diffusion_studio.cli import main
    from diffusion_studio.core.model_files import load_model
    from diffusion_studio.core.resources import sample_images

    checkpoint = tmp_path / "celeba256_250000.pt"
    net = reference_unet("iddpm-cifar10")
    torch.save(net.state_dict(), checkpoint)
    out = tmp_path / "converted"
    assert main(["convert", str(checkpoint), "--out", str(out), "--preset", "iddpm-cifar10"]) == 0
    model = load_model(out)
    assert model.info.learns_variance and model.schedule.num_train_timesteps == 4000
    argv = [
        "inpaint",
        "--model",
        str(out),
        "--image",
        str(sample_images()[0]),
        "--quiet",
        "--mask-preset",
        "half",
        "--steps",
        "4",
        "--jump-n-sample",
        "1",
        "--variance",
        "learned_range",
        "--sampler",
        "ddpm",
        "--out",
        str(tmp_path / "i.png"),
    ]
    assert main(argv) == 0
    assert (tmp_path / "i.png").is_file()
    # again without --force: refused; with it, the model folder is replaced
    assert main(["convert", str(checkpoint), "--out", str(out), "--preset", "iddpm-cifar10"]) == 2
    argv = ["convert", str(checkpoint), "--out", str(out), "--preset", "iddpm-cifar10", "--force"]
    assert main(argv) == 0
    capsys.readouterr()


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_that_is_not_a_unetmodel_is_one_line(tmp_path, capsys) -> None:
    from diffusion_studio.cli import main
    from tests.helpers import make_unet

    classifier = gd_unet.EncoderUNetModel(
        image_size=32, in_channels=3, model_channels=32, out_channels=10, num_res_blocks=1,
        attention_resolutions=[2], pool="attention", num_head_channels=32,
    ).state_dict()  # fmt: skip
    marker = tmp_path / "code-ran"
    good = reference_unet("iddpm-cifar10").state_dict()
    cases = {
        "a classifier, with a model's preset": (classifier, "pooling needs its head width"),
        "diffusers": (make_unet().state_dict(), "a diffusers UNet2DModel's weights"),
        "random": ({"a.weight": torch.zeros(3)}, "not an OpenAI UNetModel state dict"),
        "numbers": ({"a": 1}, "does not hold a state dict of tensors"),
        "code": ({"time_embed.0.weight": _RunsCode(str(marker))}, "never runs code"),
        "truncated": (None, "not a readable PyTorch checkpoint"),
        "a weight missing": (
            {k: v for k, v in good.items() if k != "middle_block.1.qkv.weight"},
            "lacks",
        ),
        "a weight more": ({**good, "input_blocks.99.0.foo": torch.zeros(1)}, "has weights"),
    }
    for name, (payload, message) in cases.items():
        path = tmp_path / f"{name}.pt"
        if payload is None:
            torch.save(good, path)
            path.write_bytes(path.read_bytes()[:2000])
        else:
            torch.save(payload, path)
        code = main(
            ["convert", str(path), "--out", str(tmp_path / "m"), "--preset", "iddpm-cifar10"]
        )
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, (name, err)
    assert not marker.exists() and not (tmp_path / "m").exists()
    assert not any(p.name.startswith(".m.") for p in tmp_path.iterdir())  # no staging left


def test_flags_the_weights_cannot_say_are_named(tmp_path, capsys) -> None:
    from diffusion_studio.cli import main

    path = tmp_path / "ckpt.pt"
    torch.save(reference_unet("adm-imagenet128").state_dict(), path)
    assert main(["convert", str(path), "--out", str(tmp_path / "m")]) == 2
    assert "--image-size" in capsys.readouterr().err
    argv = ["convert", str(path), "--out", str(tmp_path / "m"), "--image-size", "128",
            "--num-head-channels", "48"]  # fmt: skip
    assert main(argv) == 2
    assert "--num-head-channels 48 does not divide" in capsys.readouterr().err


class Unconditional(torch.nn.Module):
    """guided-diffusion's loops pass the class to the model too: the diffusion network of these
    runs is unconditional (the classifier alone knows the class); with eps_only, its variance
    half is dropped (a fixed-variance run)."""

    def __init__(self, net: torch.nn.Module, eps_only: bool) -> None:
        super().__init__()
        self.net, self.eps_only = net, eps_only

    def forward(self, x, t, y=None):
        out = self.net(x, t)
        return out[:, :3] if self.eps_only else out


@pytest.mark.parametrize(("sampler", "variance"), [("ddpm", "learned_range"), ("ddim", None),
                                                   ("ddpm", "fixed_small")])  # fmt: skip
def test_classifier_guided_runs_match_guided_diffusions_loops(monkeypatch, sampler, variance):
    """Dhariwal & Nichol's Algorithms 1 and 2 (condition_mean, condition_score) against
    guided-diffusion's loops with cond_fn, a random EncoderUNetModel as the classifier."""
    from diffusion_studio.core.convert import convert_classifier
    from diffusion_studio.core.guidance import classifier_gradient
    from diffusion_studio.core.sampling import (
        ddim_update,
        ddpm_update,
        sample,
    )

    # the network sees t as the classifier does (no rescaling: guided-diffusion's default)
    preset, steps, scale = "iddpm-cifar10", 20, 3.0
    net = reference_unet(preset)
    model = studio_model(net, preset, rescale_timesteps=False)
    torch.manual_seed(3)
    classifier = gd_unet.EncoderUNetModel(
        image_size=32, in_channels=3, model_channels=32, out_channels=10, num_res_blocks=1,
        attention_resolutions=[4], channel_mult=(1, 2, 2), num_head_channels=32,
        use_scale_shift_norm=True, resblock_updown=True, pool="attention",
    ).eval()  # fmt: skip
    with torch.no_grad():
        for parameter in classifier.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    labels = torch.tensor([4])
    # leading steps: from t = 3800, not from T - 1 = 3999, where alpha-bar is 1e-9 and x0 from
    # the guided eps (unclipped, in both codes) is float32 noise magnified 30,000 times
    timesteps = model.schedule.timesteps(steps, "leading")
    generator = torch.Generator().manual_seed(5)
    x_T = torch.randn((1, 3, 32, 32), generator=generator)
    # ours: the classifier converted into the studio's NoiseClassifier; theirs: guided-diffusion's
    converted, _ = convert_classifier(
        classifier.state_dict(), flags_for(None, {"image_size": 32, "num_head_channels": 32})
    )
    grad = classifier_gradient(converted, labels, scale)
    if sampler == "ddpm":
        update = ddpm_update(model.schedule, generator, variance, classifier_grad=grad)
    else:
        update = ddim_update(model.schedule, generator, 0.0, classifier_grad=grad)
    model_fn = model.model_fn(None, 1.0, 1)
    ours = list(sample(model_fn, x_T, timesteps, update))[-1].x_t

    def cond_fn(x, t, y=None):
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_probs = torch.log_softmax(classifier(x_in, t), dim=-1)
            chosen = log_probs[range(len(x_in)), y.view(-1)].sum()
            return torch.autograd.grad(chosen, x_in)[0] * scale

    generator = torch.Generator().manual_seed(5)
    x_T = torch.randn((1, 3, 32, 32), generator=generator)
    monkeypatch.setattr(
        gd.th, "randn_like", lambda x, **k: torch.randn(x.shape, generator=generator)
    )
    diffusion = reference_diffusion(preset, timesteps, rescale_timesteps=False)
    if variance == "fixed_small":
        diffusion = gd_respace.SpacedDiffusion(
            use_timesteps=set(timesteps),
            betas=gd.get_named_beta_schedule("cosine", 4000),
            model_mean_type=gd.ModelMeanType.EPSILON,
            model_var_type=gd.ModelVarType.FIXED_SMALL,
            loss_type=gd.LossType.MSE,
        )
    net_fn = Unconditional(net, eps_only=variance == "fixed_small")
    loop = diffusion.p_sample_loop if sampler == "ddpm" else diffusion.ddim_sample_loop
    theirs = loop(net_fn, (1, 3, 32, 32), noise=x_T, clip_denoised=True, cond_fn=cond_fn,
                  model_kwargs={"y": labels}, progress=False)  # fmt: skip
    difference = float((ours - theirs).abs().max())
    print(
        f"classifier-guided {sampler} {variance}: max |ours - guided-diffusion| = {difference:.2e}"
    )
    assert difference <= 1e-4, difference
    generator = torch.Generator().manual_seed(5)
    x_T = torch.randn((1, 3, 32, 32), generator=generator)
    if sampler == "ddpm":
        plain = ddpm_update(model.schedule, generator, variance)
    else:
        plain = ddim_update(model.schedule, generator, 0.0)
    unguided = list(sample(model_fn, x_T, timesteps, plain))[-1].x_t
    assert float((ours - unguided).abs().max()) > 1e-3  # the classifier did push


# ADM's classifiers (guided-diffusion's create_classifier: depth 2, attention at 32, 16 and 8,
# scale-shift norm, resblock downsampling, heads of 64, attention pooling) at width 64 instead
# of 128, with 10 classes instead of 1,000
CLASSIFIER_MULT = {
    "adm-classifier64": (1, 2, 3, 4),
    "adm-classifier128": (1, 1, 2, 3, 4),
    "adm-classifier256": (1, 1, 2, 2, 4, 4),
    "adm-classifier512": (0.5, 1, 1, 2, 2, 4, 4),
}


def reference_classifier(preset: str, seed: int = 0, width: int = 64, classes: int = 10):
    """guided-diffusion's EncoderUNetModel of an ADM classifier's structure, random weights."""
    size = PRESETS[preset].image_size
    torch.manual_seed(seed)
    net = gd_unet.EncoderUNetModel(
        image_size=size, in_channels=3, model_channels=width, out_channels=classes,
        num_res_blocks=2, attention_resolutions=[size // r for r in (32, 16, 8)],
        channel_mult=CLASSIFIER_MULT[preset], num_head_channels=64,
        use_scale_shift_norm=True, resblock_updown=True, pool="attention",
    ).eval()  # fmt: skip
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return net


@pytest.mark.parametrize("preset", list(CLASSIFIER_MULT))
def test_adm_classifiers_convert_exactly(preset) -> None:
    from diffusion_studio.core.convert import convert_classifier

    net = reference_classifier(preset)
    ours, arch = convert_classifier(net.state_dict(), PRESETS[preset])
    assert arch.channel_mult == CLASSIFIER_MULT[preset] and arch.out_channels == 10
    size = PRESETS[preset].image_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([3, 811])
    with torch.no_grad():
        theirs, mine = net(x, t), ours(x, t)
    relative = float((mine - theirs).abs().max() / theirs.abs().max())
    print(f"{preset}: classifier logits, relative error {relative:.2e}")
    assert relative <= 1e-5, relative


def test_a_converted_classifier_folder_opens_and_guides(tmp_path, capsys) -> None:
    from diffusion_studio.cli import main
    from diffusion_studio.core.model_files import load_classifier

    net = reference_classifier("adm-classifier64")
    torch.save(net.state_dict(), tmp_path / "64x64_classifier.pt")
    out = tmp_path / "classifier"
    command = ["convert", str(tmp_path / "64x64_classifier.pt"), "--out", str(out)]
    assert main([*command, "--preset", "adm-classifier64"]) == 0
    assert "a noise-aware classifier" in capsys.readouterr().err
    classifier = load_classifier(out, device="cpu")
    assert classifier.resolution == 64 and len(classifier.class_names) == 10
    assert classifier.schedule.beta_schedule == "squaredcos_cap_v2"  # ADM-64's cosine noise
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(classifier.network(x, 5), net(x, torch.tensor([5])), atol=1e-5)
    assert main(["info", "--model", str(out)]) == 2
    assert "holds a classifier" in capsys.readouterr().err
