"""Model folders: both diffusers layouts written by diffusers itself, offline, and refusing code."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.model import STUDIO_FILE, available_devices, pick_device
from diffusion_studio.core.model_files import load_model, save_model
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import CLASS_NAMES, make_unet


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def same_output(unet_a, unet_b) -> bool:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1]) if unet_a.config.num_class_embeds else None
    with torch.no_grad():
        return torch.allclose(unet_a(x, 10, labels).sample, unet_b(x, 10, labels).sample, atol=1e-6)


def test_flat_layout_written_by_diffusers(tmp_path, no_network) -> None:
    unet = make_unet()
    unet.save_pretrained(tmp_path)
    DDPMScheduler(
        beta_schedule="squaredcos_cap_v2", variance_type="fixed_large", num_train_timesteps=500
    ).save_pretrained(tmp_path)
    model = load_model(tmp_path, device="cpu")
    assert same_output(model.unet, unet)
    info = model.info
    assert (info.layout, info.resolution, info.in_channels) == ("flat", (16, 16), 3)
    assert info.parameters == sum(p.numel() for p in unet.parameters())
    assert (info.beta_schedule, info.num_train_timesteps, info.variance_type) == (
        "squaredcos_cap_v2",
        500,
        "fixed_large",
    )
    assert info.class_names == ()


def test_pipeline_layout_written_by_diffusers(tmp_path, no_network) -> None:
    unet = make_unet()
    DDPMPipeline(
        unet=unet, scheduler=DDPMScheduler(prediction_type="v_prediction")
    ).save_pretrained(tmp_path)
    assert (tmp_path / "model_index.json").is_file()
    model = load_model(tmp_path, device="cpu")
    assert same_output(model.unet, unet)
    assert model.info.layout == "pipeline"
    assert model.schedule.prediction_type == "v_prediction"
    # the unet/ folder given directly finds its scheduler beside it
    assert load_model(tmp_path / "unet").schedule.prediction_type == "v_prediction"


def test_without_a_scheduler_config_the_linear_schedule_is_used(tmp_path) -> None:
    make_unet().save_pretrained(tmp_path)
    schedule = load_model(tmp_path).schedule
    assert schedule.beta_schedule == "linear" and schedule.num_train_timesteps == 1000
    assert schedule.betas[0] == pytest.approx(1e-4) and schedule.betas[-1] == pytest.approx(0.02)


def test_plain_bin_weights_load(tmp_path) -> None:
    unet = make_unet()
    unet.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "diffusion_pytorch_model.bin").is_file()
    assert same_output(load_model(tmp_path).unet, unet)


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_carries_code_is_refused(tmp_path) -> None:
    make_unet().save_pretrained(tmp_path, safe_serialization=False)
    marker = tmp_path / "code-ran"
    torch.save({"conv_in.weight": _RunsCode(str(marker))}, tmp_path / "diffusion_pytorch_model.bin")
    with pytest.raises(InputError, match=r"refused.*never runs code"):
        load_model(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate_weights", "not a valid safetensors file"),
        ("garbage_bin", "not a readable PyTorch checkpoint"),
        ("garbage_config", "not readable JSON"),
        ("no_weights", "has no weights"),
        ("other_class", "UNet2DConditionModel"),
        ("mismatch", r"weight .conv_in.bias. has shape \(8,\), config.json needs \(16,\)"),
    ],
)
def test_damaged_folders_give_a_plain_message(tmp_path, damage: str, message: str) -> None:
    make_unet().save_pretrained(tmp_path)
    weights, config = tmp_path / "diffusion_pytorch_model.safetensors", tmp_path / "config.json"
    if damage == "garbage_bin":
        weights.unlink()
        (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"not a checkpoint" * 10)
    elif damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "garbage_config":
        config.write_text("{not json")
    elif damage == "no_weights":
        weights.unlink()
    elif damage == "other_class":
        config.write_text(
            json.dumps({**json.loads(config.read_text()), "_class_name": "UNet2DConditionModel"})
        )
    else:
        config.write_text(
            json.dumps({**json.loads(config.read_text()), "block_out_channels": [16, 32]})
        )
    with pytest.raises(InputError, match=message):
        load_model(tmp_path)


def test_missing_folders_are_plain_messages_not_hub_errors(tmp_path, no_network) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"neither config\.json nor model_index\.json"):
        load_model(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        load_model(tmp_path / "f.txt")


@pytest.mark.parametrize("layout", ["flat", "pipeline"])
def test_save_and_load_round_trip_with_class_names(tmp_path, layout) -> None:
    unet = make_unet(num_class_embeds=len(CLASS_NAMES) + 1)
    schedule = NoiseSchedule.from_config(
        {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}
    )
    path = save_model(
        unet,
        schedule,
        tmp_path / "m",
        layout=layout,
        studio={"class_names": CLASS_NAMES, "name": "shapes", "license": "MIT"},
    )
    model = load_model(path)
    assert model.info.class_names == tuple(CLASS_NAMES)
    assert model.info.null_class == 3
    assert model.info.layout == layout and model.info.name == "shapes"
    assert model.schedule.prediction_type == "v_prediction"
    assert model.class_index("Square") == 1 and model.class_index("2") == 2
    with pytest.raises(InputError, match="circle, square, triangle"):
        model.class_index("hexagon")
    with pytest.raises(InputError, match="out of range"):
        model.class_index(3)
    with pytest.raises(InputError, match="already exists"):
        save_model(unet, schedule, path)
    save_model(
        make_unet(num_class_embeds=4, seed=1),
        schedule,
        path,
        overwrite=True,
        studio={"class_names": CLASS_NAMES},
    )
    assert not same_output(load_model(path).unet, unet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left


def test_the_default_class_is_named_in_the_json(tmp_path) -> None:
    def saved(name: str, studio: dict) -> Path:
        unet, schedule = make_unet(num_class_embeds=4), NoiseSchedule.linear()
        return save_model(unet, schedule, tmp_path / name, studio=studio)

    assert load_model(saved("a", {"class_names": CLASS_NAMES})).info.default_class == 0
    chosen = saved("b", {"class_names": CLASS_NAMES, "default_class": "triangle"})
    assert load_model(chosen).info.default_class == 2
    with pytest.raises(InputError, match="'hexagon' is not one of its class_names"):
        load_model(saved("c", {"class_names": CLASS_NAMES, "default_class": "hexagon"}))


def test_class_names_must_fit_the_network(tmp_path) -> None:
    path = save_model(
        make_unet(num_class_embeds=4),
        NoiseSchedule.linear(),
        tmp_path / "m",
        studio={"class_names": ["a"]},
    )
    with pytest.raises(InputError, match=STUDIO_FILE):
        load_model(path)


def test_devices() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in {"cpu", "cuda", "mps"}
    assert available_devices()[-1] == "cpu"
    with pytest.raises(InputError, match="unknown device"):
        pick_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            pick_device("cuda")


def test_a_saved_model_is_readable_as_any_new_file_is(tmp_path) -> None:
    probe = tmp_path / "probe"
    probe.touch()
    expected = probe.stat().st_mode & 0o777  # what the umask gives a new file here
    path = save_model(make_unet(), NoiseSchedule.linear(100), tmp_path / "m", studio={"a": 1})
    for item in path.rglob("*"):
        assert item.stat().st_mode & 0o777 == expected, item.name
    assert path.stat().st_mode & 0o444 == expected & 0o444
