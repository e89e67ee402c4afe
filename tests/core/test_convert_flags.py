"""convert takes guided-diffusion's flags as its README prints them: both spellings, every flag
of its scripts' defaults; those the weights show are checked against them, the rest applied or
said to be ignored; flags that cannot fit the weights are named, not met as a reshape error."""

from __future__ import annotations

import shlex

import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.model_files import load_model
from diffusion_studio.core.openai_flags import PRESETS, flags_for, flags_from_text
from tests.core.test_convert import reference_unet

# the network of reference_unet("iddpm-cifar10"), in the flags of improved-diffusion's README
MODEL_FLAGS = (
    "--image_size 32 --num_channels 32 --num_res_blocks 2 --learn_sigma True "
    "--attention_resolutions 16,8 --channel_mult 1,2,2,2 --class_cond False --num_heads 4 "
    "--use_scale_shift_norm True --resblock_updown False --dropout 0.3 --use_fp16 True"
)
DIFFUSION_FLAGS = "--diffusion_steps 4000 --noise_schedule cosine --rescale_timesteps True"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "cifar10_uncond.pt"
    torch.save(reference_unet("iddpm-cifar10").state_dict(), path)
    return path


def convert(capsys, checkpoint, out, flags: str) -> tuple[int, str]:
    code = main(["convert", str(checkpoint), "--out", str(out), *shlex.split(flags)])
    return code, capsys.readouterr().err


def test_pasted_flags_convert_as_the_preset_does(capsys, tmp_path, checkpoint) -> None:
    code, err = convert(capsys, checkpoint, tmp_path / "pasted", f"{MODEL_FLAGS} {DIFFUSION_FLAGS}")
    assert code == 0, err
    assert "ignored, as they do not change the network's output:" in err
    assert "--dropout 0.3" in err and "--use_fp16 True" in err
    code, err = convert(capsys, checkpoint, tmp_path / "preset", "--preset iddpm-cifar10")
    assert code == 0, err
    pasted, preset = load_model(tmp_path / "pasted"), load_model(tmp_path / "preset")
    assert pasted.schedule.to_config() == preset.schedule.to_config()
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([3000])
    with torch.no_grad():
        assert torch.equal(pasted.unet(x, t).sample, preset.unet(x, t).sample)


def test_the_command_line_spelling_and_bare_bools_work_too(capsys, tmp_path, checkpoint) -> None:
    flags = ("--image-size 32 --num-channels 32 --learn-sigma --class-cond false "
             "--diffusion-steps 4000 --noise-schedule cosine --rescale-timesteps")  # fmt: skip
    code, err = convert(capsys, checkpoint, tmp_path / "m", flags)
    assert code == 0, err
    assert load_model(tmp_path / "m").info.learns_variance


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        ("--num_channels 256", "--num-channels 256: the weights say 32"),
        ("--num_res_blocks 3", "--num-res-blocks 3: the weights say 2"),
        ("--class_cond True", "--class-cond True: the weights say False"),
        ("--learn_sigma False", "--learn-sigma False: the weights say True"),
        (
            "--attention_resolutions 32,16,8",
            "--attention-resolutions 32,16,8: the weights say 16,8",
        ),
        ("--channel_mult 1,2,3,4", "--channel-mult 1,2,3,4: the weights say 1,2,2,2"),
        ("--resblock_updown True", "--resblock-updown True: the weights say False"),
        ("--use_scale_shift_norm False", "--use-scale-shift-norm False: the weights say True"),
    ],
)
def test_a_flag_the_weights_contradict_is_one_line(capsys, tmp_path, checkpoint, flags, says):
    code, err = convert(capsys, checkpoint, tmp_path / "m", f"--preset iddpm-cifar10 {flags}")
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        ("--num-heads 7", "--num-heads 7 does not divide the attention widths of the weights, 64"),
        ("--num_head_channels 48", "--num-head-channels 48 does not divide"),
        ("--image_size 17", "--image-size 17 does not fit the weights"),
        ("--image_size 100000", "--image-size 100000 does not fit the weights"),
        ("--class_cond maybe", "--class-cond takes True or False"),
        ("--num_channels ２５６", "--num-channels takes a whole number"),
        ("--noise_schedule sigmoid", "--noise-schedule is linear or cosine"),
    ],
)
def test_flags_that_cannot_fit_are_named_by_their_flag(capsys, tmp_path, checkpoint, flags, says):
    code, err = convert(capsys, checkpoint, tmp_path / "m", f"--preset iddpm-cifar10 {flags}")
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert ".converting" not in err and "Traceback" not in err


def test_sampling_flags_are_said_to_be_chosen_when_sampling(capsys, tmp_path, checkpoint) -> None:
    flags = "--preset iddpm-cifar10 --timestep_respacing 250 --use_ddim True --batch_size 4"
    code, err = convert(capsys, checkpoint, tmp_path / "m", flags)
    assert code == 0, err
    assert "sampling flags, chosen when sampling: --timestep_respacing" in err


def test_flags_pasted_as_one_text_read_as_the_command_line_reads_them() -> None:
    text = f'{MODEL_FLAGS} --noise_schedule=cosine --learn_sigma "True"'
    given = flags_from_text(text)
    assert given["attention_resolutions"] == (16.0, 8.0) and given["learn_sigma"] is True
    assert given["noise_schedule"] == "cosine" and given["use_fp16"] is True
    flags = flags_for(None, given)
    assert flags.image_size == 32 and ("num_channels", 32) in flags.stated
    assert ("use_fp16", True) in flags.unused
    assert flags_from_text("--learn-sigma --class_cond False")["learn_sigma"] is True
    for bad in ("--zebra 3", "image_size 32", "--num_channels", '--image_size "32'):
        with pytest.raises(InputError):
            flags_from_text(bad)


def test_improved_diffusion_s_presets_rescale_their_timesteps() -> None:
    assert PRESETS["iddpm-cifar10"].timestep_scale == 0.25
    assert PRESETS["adm-imagenet256"].timestep_scale is None  # guided-diffusion: T = 1000
