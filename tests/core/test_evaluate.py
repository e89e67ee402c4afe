"""The evaluation yardstick: the Frechet distance, the shipped classifier, and `eval`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.evaluate import (
    FeatureStats,
    evaluation_rows,
    frechet_distance,
    held_out_split,
    load_eval_classifier,
    predict,
)
from diffusion_studio.core.images import load_image, to_tensor
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.resources import resources_dir, sample_images
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import make_unet


def test_the_distance_of_a_set_to_itself_is_zero_and_grows_with_noise() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
    stats = FeatureStats.of(real)
    assert frechet_distance(stats, stats) == pytest.approx(0.0, abs=1e-6)
    distances = [
        frechet_distance(stats, FeatureStats.of(real + rng.normal(scale=s, size=real.shape)))
        for s in (0.1, 0.3, 1.0, 3.0)
    ]
    assert distances[0] > 0
    assert all(a < b for a, b in itertools.pairwise(distances))


def test_the_distance_matches_the_closed_form_for_diagonal_covariances() -> None:
    a = FeatureStats(np.array([0.0, 1.0, 2.0]), np.diag([1.0, 4.0, 9.0]))
    b = FeatureStats(np.array([1.0, 1.0, 0.0]), np.diag([4.0, 1.0, 1.0]))
    # |mu_a - mu_b|^2 + sum (sqrt(s_a) - sqrt(s_b))^2
    expected = (1 + 0 + 4) + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected)
    assert frechet_distance(b, a) == pytest.approx(expected)


def test_held_out_split_is_stratified_and_disjoint() -> None:
    labels = np.repeat(np.arange(3), [20, 40, 100])
    train, held = held_out_split(labels, 0.25, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [5, 10, 25]


def test_the_shipped_classifier_is_small_and_knows_the_samples() -> None:
    weights = resources_dir() / "classifier" / "classifier.safetensors"
    assert weights.stat().st_size < 2 * 1024 * 1024
    classifier, card, real = load_eval_classifier()
    assert len(card.class_names) == 9 and 0.5 < card.held_out_accuracy <= 1
    assert real.mean.shape == (128,) and real.cov.shape == (128, 128)
    expected = {
        "grinning": "Smileys & Emotion",
        "fox-face": "Animals & Nature",
        "apple": "Food & Drink",
        "rocket": "Travel & Places",
        "pizza": "Food & Drink",
        "house": "Travel & Places",
        "soccer": "Activities",
        "butterfly": "Animals & Nature",
    }
    images = {p.stem: p for p in sample_images()}
    batch = torch.cat([to_tensor(load_image(images[name])) for name in expected])
    predicted = [card.class_names[i] for i in predict(classifier, batch).tolist()]
    right = sum(p == e for p, e in zip(predicted, expected.values()))
    assert right >= 6, list(zip(expected, predicted))


@pytest.fixture
def emoji_shaped_model(tmp_path):
    """A tiny random model with the classifier's classes, which eval accepts."""
    classes = load_eval_classifier()[1].class_names
    return save_model(
        make_unet(size=32, num_class_embeds=len(classes) + 1),
        NoiseSchedule.linear(),
        tmp_path / "m",
        studio={"class_names": list(classes)},
    )


def test_eval_prints_the_tables(capsys, emoji_shaped_model) -> None:
    path = emoji_shaped_model
    code = main(
        ["eval", "--model", str(path), "--steps", "2,3", "--eta", "0", "-n", "9", "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0
    for row in ("DDIM eta=0", "DDPM beta~", "DDPM beta", "S=2", "S=3", "floor", "held-out"):
        assert row in out
    command = ["eval", "--model", str(path), "--steps", "2", "--eta", "0", "-n", "9"]
    assert main(command) == 0
    err = capsys.readouterr().err  # without --quiet, each setting as it is done
    assert "DDIM eta=0 S=2: FD " in err and "DDPM beta S=2: FD " in err and "accuracy" in err


def test_ddpm_with_beta_tilde_has_no_row_of_its_own_beside_ddim_eta_one() -> None:
    names = [name for name, _ in evaluation_rows("both", [0.0, 1.0])]
    assert names == ["DDIM eta=0", "DDIM eta=1", "DDPM beta"]
    assert [name for name, _ in evaluation_rows("both", [0.0])][-2:] == ["DDPM beta~", "DDPM beta"]
    assert [name for name, _ in evaluation_rows("ddpm", [1.0])] == ["DDPM beta~", "DDPM beta"]


def test_eval_compile_compiles_the_network_once(emoji_shaped_model, monkeypatch) -> None:
    path = emoji_shaped_model
    compiled = []

    def fake_compile(module, **options):  # compiling for real takes minutes: count instead
        compiled.append(options)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    argv = ["eval", "--model", str(path), "--steps", "2", "--eta", "0", "-n", "9", "--quiet"]
    assert main([*argv, "--compile"]) == 0
    assert compiled == [{"dynamic": False}]


def test_a_saved_classifier_loads_back_and_is_replaced_only_when_asked(tmp_path) -> None:
    from diffusion_studio.core.errors import OutputExistsError
    from diffusion_studio.core.evaluate import save_eval_classifier

    classifier, card, real = load_eval_classifier()
    save_eval_classifier(classifier, card, real, tmp_path / "c")
    again, card_again, real_again = load_eval_classifier(tmp_path / "c")
    x = torch.zeros(1, 3, 32, 32)
    assert torch.equal(again(x), classifier(x)) and card_again == card
    assert np.array_equal(real_again.cov, real.cov)
    with pytest.raises(OutputExistsError):
        save_eval_classifier(classifier, card, real, tmp_path / "c")
    save_eval_classifier(classifier, card, real, tmp_path / "c", overwrite=True)


def test_eval_has_a_row_per_guidance_and_classifier_scale(capsys, emoji_shaped_model) -> None:
    from tests.helpers import make_classifier

    classes = load_eval_classifier()[1].class_names
    guide = save_model(
        make_classifier(size=32, classes=len(classes)),
        NoiseSchedule.linear(),
        emoji_shaped_model.parent / "guide",
        studio={"name": "guide", "class_names": list(classes)},
    )
    argv = ["eval", "--model", str(emoji_shaped_model), "--sampler", "ddim", "--steps", "2",
            "--eta", "0", "-n", "9", "--quiet", "--guidance", "0,3", "--classifier-scale",
            "0,5", "--classifier", str(guide)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    for row in ("DDIM eta=0 cfg=0 cg=0 ", "DDIM eta=0 cfg=0 cg=5 ", "DDIM eta=0 cfg=3 cg=5 "):
        assert out.count(row) == 2, out  # in both tables
    assert "classifier guide" in out
    assert main([*argv[:-2]]) == 2  # scales without a classifier, on a model not the embedded
