"""Classifier guidance through a whole job: the classifier's place in the Job and the model
boundary, its gradient only through the classifier, every sampler and RePaint guided, and one
message for a classifier that does not fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.job import Job
from diffusion_studio.core.masks import preset_mask
from diffusion_studio.core.model_files import load_classifier, load_model, save_model
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import execute
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import CLASS_NAMES, make_classifier


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir):
    return load_classifier(tiny_classifier_dir, device="cpu")


def images(model, request, classifier=None, **inputs):
    job = Job.prepare(request, model.info, classifier=classifier and classifier.info, **inputs)
    result = execute(model, job, classifier=classifier)
    return result.images.astype(int), result


GUIDED = {
    "ddpm": SampleRequest(sampler="ddpm", num_inference_steps=10, seed=3, batch_size=2),
    "ddim": SampleRequest(sampler="ddim", num_inference_steps=10, seed=3, batch_size=2),
    "ddim eta 1 with CFG": SampleRequest(num_inference_steps=10, eta=1.0, seed=3, guidance_scale=3),
}


@pytest.mark.parametrize("name", list(GUIDED))
def test_the_classifier_steers_every_sampler_and_a_run_repeats(model, classifier, name) -> None:
    request = dataclasses.replace(GUIDED[name], class_label=1)
    plain, _ = images(model, request)
    guided = dataclasses.replace(request, classifier_scale=30.0)
    first, result = images(model, guided, classifier)
    again, _ = images(model, guided, classifier)
    assert np.array_equal(first, again)  # the same seed and scale make the same images
    assert np.abs(first - plain).max() > 0  # the classifier moved them
    norms = [f.guidance for f in result.trajectory.frames]
    assert all(n is not None and n > 0 for n in norms)  # the live view's per-step term
    assert result.job.classifier == classifier.info


def test_repaint_is_guided_and_keeps_the_known_pixels(model, classifier) -> None:
    source = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = preset_mask("half", model.info.resolution, seed=0)
    request = SampleRequest(num_inference_steps=10, jump_length=3, jump_n_sample=2, class_label=0)
    plain, _ = images(model, request, image=source, mask=mask)
    guided = dataclasses.replace(request, classifier_scale=30.0)
    out, _ = images(model, guided, classifier, image=source, mask=mask)
    assert np.array_equal(out[:, ~mask], source[None, ~mask].astype(int))
    assert np.abs(out - plain)[:, mask].max() > 0


def test_the_gradient_runs_through_the_classifier_alone(model, classifier, monkeypatch) -> None:
    seen = []
    forward = model.unet.forward

    def watched(x, *args, **kwargs):
        seen.append((torch.is_grad_enabled(), x.requires_grad))
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(model.unet, "forward", watched)
    request = SampleRequest(num_inference_steps=4, class_label=2, classifier_scale=5.0)
    images(model, request, classifier)
    assert seen and not any(grad or requires for grad, requires in seen)
    assert all(p.grad is None for p in classifier.network.parameters())


def test_an_unconditional_model_is_guided_towards_the_classifiers_class(
    tiny_uncond_dir, tmp_path
) -> None:
    model = load_model(tiny_uncond_dir, device="cpu")  # T = 1000
    folder = tmp_path / "c1000"
    save_model(
        make_classifier(), NoiseSchedule.linear(), folder, studio={"class_names": CLASS_NAMES}
    )
    classifier = load_classifier(folder, device="cpu")
    request = SampleRequest(num_inference_steps=5, class_label=2, classifier_scale=10.0)
    out, _ = images(model, request, classifier)
    plain, _ = images(model, dataclasses.replace(request, classifier_scale=0.0, class_label=None))
    assert np.abs(out - plain).max() > 0
    with pytest.raises(InputError, match="is not class-conditional"):
        images(model, dataclasses.replace(request, classifier_scale=0.0, class_label=2))


def test_a_classifier_that_does_not_fit_is_one_message(model, tmp_path) -> None:
    cases = {
        "another size": (make_classifier(size=32), NoiseSchedule.linear(100), "classifies 32x32"),
        "another noise": (make_classifier(), NoiseSchedule.linear(1000), "noise schedule"),
        "other classes": (make_classifier(classes=4), NoiseSchedule.linear(100), "classes"),
    }
    request = SampleRequest(num_inference_steps=4, class_label=1, classifier_scale=2.0)
    for name, (network, schedule, message) in cases.items():
        names = [f"c{i}" for i in range(network.config.num_classes)]
        save_model(network, schedule, tmp_path / name, studio={"class_names": names})
        classifier = load_classifier(tmp_path / name, device="cpu")
        with pytest.raises(InputError, match=message):
            images(model, request, classifier)
    with pytest.raises(InputError, match="needs a classifier"):
        Job.prepare(request, model.info)
    with pytest.raises(InputError, match="choose one"):
        SampleRequest(classifier_scale=2.0).check()
    for scale in (float("nan"), -1.0, 1e9):
        with pytest.raises(InputError, match="classifier scale"):
            SampleRequest(class_label=0, classifier_scale=scale).check()


def test_a_classifier_folder_is_read_at_the_boundary(
    tiny_classifier_dir, tiny_model_dir, tmp_path
) -> None:
    import json
    import shutil

    from diffusion_studio.cli import main

    assert main(["info", "--model", str(tiny_classifier_dir)]) == 2
    bad = {
        "classes text": ("config.json", {"num_classes": "three"}, "num_classes"),
        "pool head": ("config.json", {"pool_head_dim": 5}, "pool_head_dim"),
        "a key of another network": ("config.json", {"up_block_types": []}, "not a key"),
        "a UNet's config": ("config.json", {"_class_name": "UNet2DModel"}, "not a classifier"),
        "class names short": ("diffusion_studio.json", {"class_names": ["a"]}, "class_names"),
        "groups": ("config.json", {"norm_num_groups": 0}, "norm_num_groups"),
    }
    for name, (file, change, message) in bad.items():
        folder = tmp_path / name
        shutil.copytree(tiny_classifier_dir, folder)
        data = json.loads((folder / file).read_text())
        (folder / file).write_text(json.dumps({**data, **change}))
        with pytest.raises(InputError, match=message):
            load_classifier(folder, device="cpu")
    with pytest.raises(InputError, match=r"classifier folder .* does not exist"):
        load_classifier(tmp_path / "nowhere", device="cpu")
    with pytest.raises(
        InputError, match=r"not a classifier folder: its config\.json describes a UNet"
    ):
        load_classifier(tiny_model_dir, device="cpu")
