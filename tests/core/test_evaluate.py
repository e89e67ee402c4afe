"""The evaluation yardstick: the Frechet distance, the shipped classifier, and `eval`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import load_image, to_tensor
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.resources import resources_dir, sample_images
from diffusion_studio.core.schedule import NoiseSchedule
from diffusion_studio.core.train.evaluate import (
    FeatureStats,
    class_allocation,
    evaluation_rows,
    frechet_distance,
    held_out_split,
    load_eval_classifier,
    predict,
    resized,
)
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


def test_samples_are_allotted_to_the_classes_in_the_data_s_shares() -> None:
    assert class_allocation(10, 3, (100, 300, 600)) == [1, 3, 6]
    # 512 over the emoji data's counts: the remainders go to the largest fractions
    counts = (170, 318, 540, 262, 528, 772, 338, 448, 436)
    allocation = class_allocation(512, 9, counts)
    assert sum(allocation) == 512
    exact = [512 * c / sum(counts) for c in counts]
    assert all(abs(a - e) < 1 for a, e in zip(allocation, exact))
    assert class_allocation(11, 3) == [4, 4, 3]  # no counts: an even spread
    with pytest.raises(InputError):
        class_allocation(10, 3, (1, 2))


def test_the_shipped_card_knows_the_data_s_classes_and_its_floor_by_sample_count() -> None:
    card = load_eval_classifier()[1]
    assert len(card.class_counts) == 9 and sum(card.class_counts) == 3812
    assert min(card.class_counts) > 0 and max(card.class_counts) > 4 * min(card.class_counts)
    sizes = [n for n, _ in card.floors_by_size]
    floors = [f for _, f in card.floors_by_size]
    assert 512 in sizes and card.floor_at(512) == floors[sizes.index(512)]
    # fewer images, a noisier estimate: the floor of an n-sample score falls as n grows
    assert all(a > b for a, b in itertools.pairwise(floors)) and floors[-1] > 0
    assert card.floor_at(7) is None


def test_eval_draws_the_classes_in_the_data_s_shares(capsys, emoji_shaped_model, monkeypatch):
    import diffusion_studio.core.train.samples as evaluate

    drawn = []
    real_score = evaluate.score

    def counting_score(classifier, images, labels, real):
        drawn.append(np.bincount(labels.numpy(), minlength=9).tolist())
        return real_score(classifier, images, labels, real)

    monkeypatch.setattr(evaluate, "score", counting_score)
    argv = ["eval", "--model", str(emoji_shaped_model), "--sampler", "ddim", "--steps", "1",
            "--eta", "0", "-n", "40", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    counts = load_eval_classifier()[1].class_counts
    assert drawn == [class_allocation(40, 9, counts)]
    assert drawn[0] != class_allocation(40, 9)  # not an even spread
    out = capsys.readouterr().out
    assert "two halves of the data" in out and "real images against all" not in out
    assert main([*argv[:-2], "128", "--quiet"]) == 0  # a count the card has a floor for
    floor = load_eval_classifier()[1].floor_at(128)
    assert f"floor {floor:.3f} (128 real images against all)" in capsys.readouterr().out


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
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)  # the default, restored
    argv = ["eval", "--model", str(path), "--steps", "2", "--eta", "0", "-n", "9", "--quiet"]
    assert main([*argv, "--compile"]) == 0
    assert compiled == [{"dynamic": False}]
    # every batch size of the eval's class shares gets its compile, none falls back to eager
    assert torch._dynamo.config.recompile_limit >= 64


def test_a_saved_classifier_loads_back_and_is_replaced_only_when_asked(tmp_path) -> None:
    from diffusion_studio.core.errors import OutputExistsError
    from diffusion_studio.core.train.evaluate import save_eval_classifier

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


def test_a_64x64_model_is_scored_at_the_classifier_s_32x32(capsys, tmp_path, monkeypatch):
    import diffusion_studio.core.train.samples as evaluate

    classes = load_eval_classifier()[1].class_names
    model = save_model(
        make_unet(size=64, num_class_embeds=len(classes) + 1),
        NoiseSchedule.linear(),
        tmp_path / "m64",
        studio={"class_names": list(classes)},
    )
    sizes = []
    real_score = evaluate.score

    def sized_score(classifier, images, labels, real):
        sizes.append(tuple(images.shape[1:]))
        return real_score(classifier, images, labels, real)

    monkeypatch.setattr(evaluate, "score", sized_score)
    argv = ["eval", "--model", str(model), "--sampler", "ddim", "--steps", "1", "-n", "9"]
    assert main([*argv, "--quiet"]) == 0
    assert sizes and set(sizes) == {(3, 32, 32)}  # each row's samples, resized
    assert "64x64 samples are scored at 32x32" in capsys.readouterr().out


def test_resizing_for_the_classifier_keeps_flat_colours_and_the_right_size() -> None:
    images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    images[0] = (200, 30, 90)
    images[1, :, :32] = 255  # left half white, right half black
    small = resized(images, 32)
    assert small.shape == (2, 32, 32, 3) and small.dtype == np.uint8
    assert (small[0] == (200, 30, 90)).all()
    assert (small[1, :, :12] == 255).all() and (small[1, :, 20:] <= 1).all()  # Lanczos rings
    assert 0 < small[1, 0, 15, 0] < 255 and 0 < small[1, 0, 16, 0] < 255  # at the edge alone
    assert resized(small, 32) is small
