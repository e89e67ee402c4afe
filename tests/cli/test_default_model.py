"""The embedded default model: it ships, loads offline, and is what runs when no model is named."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.export import read_png_metadata
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.resources import default_model_dir

EMOJI_CATEGORIES = (
    "Activities",
    "Animals & Nature",
    "Flags",
    "Food & Drink",
    "Objects",
    "People & Body",
    "Smileys & Emotion",
    "Symbols",
    "Travel & Places",
)


def test_the_default_model_ships_as_safetensors_under_30_mb() -> None:
    folder = default_model_dir()
    weights = folder / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 30 * 2**20
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    card = (folder / "README.md").read_text(encoding="utf-8")
    for fact in ("Noto Emoji", "Twemoji", "Apache", "CC BY 4.0", "diffusion-studio train"):
        assert fact in card


def test_no_model_means_the_embedded_class_conditional_emoji_model() -> None:
    model = load_model(None, device="cpu")
    info = model.info
    assert (info.resolution, info.in_channels, info.out_channels) == ((32, 32), 3, 3)
    assert info.class_names == EMOJI_CATEGORIES
    assert info.prediction_type == "v_prediction"
    training = json.loads((default_model_dir() / "diffusion_studio.json").read_text())["training"]
    assert training["steps"] > 0 and training["command"].startswith("diffusion-studio train")


def test_sample_without_model_uses_it(capsys, tmp_path) -> None:
    out = tmp_path / "flag.png"
    command = "sample --steps 4 --class Flags --guidance 3 --seed 5 --quiet --out"
    code = main([*command.split(), str(out)])
    assert code == 0, capsys.readouterr().err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (32, 32, 3) and image.std() > 0
    metadata = read_png_metadata(out)
    assert metadata["request"]["class_label"] == EMOJI_CATEGORIES.index("Flags")
    assert metadata["model"] == "emoji32"


def test_a_noise_aware_classifier_ships_to_guide_it() -> None:
    from diffusion_studio.core.model_files import load_classifier
    from diffusion_studio.core.resources import guidance_classifier_dir

    folder = guidance_classifier_dir()
    weights = list(folder.glob("*.safetensors"))
    assert len(weights) == 1 and weights[0].stat().st_size <= 5 * 2**20
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    classifier = load_classifier(folder, device="cpu")
    model = load_model(None, device="cpu")
    assert classifier.mismatch(model) is None
    assert classifier.class_names == EMOJI_CATEGORIES
    assert classifier.schedule.num_train_timesteps == model.schedule.num_train_timesteps
    card = (folder / "README.md").read_text(encoding="utf-8")
    for fact in ("diffusion-studio train-classifier", "t = 999", "resources/classifier"):
        assert fact in card


def test_classifier_guidance_without_classifier_uses_the_shipped_one(capsys, tmp_path) -> None:
    out = tmp_path / "guided.png"
    command = "sample --steps 4 --class Flags --guidance 0 --classifier-scale 2 --quiet --out"
    code = main([*command.split(), str(out)])
    assert code == 0, capsys.readouterr().err
    metadata = read_png_metadata(out)
    assert metadata["request"]["classifier_scale"] == 2
    assert metadata["classifier"] == "Emoji noise-aware classifier"


def test_inpaint_takes_the_class_its_image_looks_like(tmp_path, capsys) -> None:
    from diffusion_studio.core.record import read_record
    from diffusion_studio.core.resources import sample_images

    pizza = next(p for p in sample_images() if p.stem == "pizza")
    common = ["inpaint", "--image", str(pizza), "--mask-preset", "half-left", "--steps", "3"]
    common += ["--jump-n-sample", "1", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "auto.png")]) == 0
    assert "class from the image: Food & Drink, 0." in capsys.readouterr().err
    assert read_record(tmp_path / "auto.png").request.class_label == 3  # Food & Drink
    assert main([*common, "--class", "auto", "--out", str(tmp_path / "again.png")]) == 0
    assert read_record(tmp_path / "again.png").request.class_label == 3
    capsys.readouterr()
    # a class given is kept, and nothing is said of the image
    assert main([*common, "--class", "Flags", "--out", str(tmp_path / "flags.png")]) == 0
    assert "from the image" not in capsys.readouterr().err
    assert read_record(tmp_path / "flags.png").request.class_label == 2


def test_class_auto_is_refused_where_it_cannot_be_read(tmp_path, capsys, tiny_model_dir) -> None:
    assert main(["sample", "--class", "auto", "--quiet", "--out", str(tmp_path / "s.png")]) == 2
    assert "it is for inpaint" in capsys.readouterr().err
    image = tmp_path / "i.png"
    Image.new("RGB", (16, 16), "red").save(image)
    argv = ["inpaint", "--model", str(tiny_model_dir), "--image", str(image), "--class", "auto"]
    assert main([*argv, "--mask-preset", "wide", "--quiet", "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not know the classes of tiny" in err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "s.png").exists()
