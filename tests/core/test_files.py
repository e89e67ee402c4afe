"""The one rule for writing: nothing a person made is replaced or deleted without being asked,
and a folder only if it is a model folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusion_studio.core.errors import InputError, OutputExistsError
from diffusion_studio.core.files import (
    atomic_write,
    check_apart,
    check_file_target,
    check_folder_target,
    exclusive_lock,
    not_model_files,
)
from diffusion_studio.core.model_files import save_model
from diffusion_studio.core.schedule import NoiseSchedule
from tests.helpers import make_unet


def model_folder(path: Path) -> Path:
    return save_model(make_unet(), NoiseSchedule.linear(10), path, studio={"name": "m"})


def test_a_file_is_replaced_only_when_asked(tmp_path) -> None:
    path = tmp_path / "a.png"
    atomic_write(path, lambda f: f.write(b"one"))
    with pytest.raises(OutputExistsError):
        atomic_write(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"one"
    atomic_write(path, lambda f: f.write(b"two"), overwrite=True)
    assert path.read_bytes() == b"two"


def test_a_folder_is_never_replaced_by_a_file(tmp_path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "thesis.txt").write_text("three years")
    with pytest.raises(InputError, match="is a folder"):
        check_file_target(tmp_path / "work", overwrite=True)
    assert (tmp_path / "work" / "thesis.txt").read_text() == "three years"


def test_a_model_folder_is_replaced_with_overwrite_only(tmp_path) -> None:
    path = model_folder(tmp_path / "m")
    assert not_model_files(path) == []
    with pytest.raises(OutputExistsError):
        model_folder(path)
    before = (path / "config.json").stat().st_mtime_ns
    time.sleep(0.01)
    save_model(make_unet(seed=1), NoiseSchedule.linear(10), path, overwrite=True)
    assert (path / "config.json").stat().st_mtime_ns != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing left beside it


def test_a_folder_with_anything_else_is_never_replaced(tmp_path) -> None:
    path = model_folder(tmp_path / "m")
    (path / "notes.txt").write_text("mine")
    (path / "unet").mkdir()
    (path / "unet" / "thesis.tex").write_text("mine too")
    with pytest.raises(InputError, match=r"not a model folder.*notes\.txt.*unet/thesis\.tex"):
        save_model(make_unet(), NoiseSchedule.linear(10), path, overwrite=True)
    assert (path / "notes.txt").read_text() == "mine"
    assert (path / "unet" / "thesis.tex").read_text() == "mine too"


def test_a_link_is_not_a_model_folder(tmp_path) -> None:
    real = model_folder(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(InputError, match="is a link"):
        check_folder_target(tmp_path / "link", overwrite=True)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (".", "is the current folder"),
        ("..", "a folder above the current one"),
        ("data", "is the training data"),
        ("data/inner", "lies inside the training data"),
        ("data/..", "is the current folder"),
        ("ck", "is the checkpoint folder"),
        ("ck/..", "is the current folder"),
    ],
)
def test_an_output_apart_from_the_current_folder_data_and_checkpoints(
    tmp_path, monkeypatch, out: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError, match=message):
        check_apart(out, {"training data": "data", "checkpoint folder": "ck"})
    check_apart("model", {"training data": "data", "checkpoint folder": "ck"})


def test_an_output_that_holds_the_data_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="holds the training data"):
        check_apart("work", {"training data": "work/images"})


def test_a_second_holder_of_a_lock_is_refused_at_once(tmp_path) -> None:
    target = tmp_path / "model"
    code = (
        "import sys, time\n"
        "from diffusion_studio.core.files import exclusive_lock\n"
        f"with exclusive_lock({str(target)!r}, 'training'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with (
            pytest.raises(InputError, match="another training is writing"),
            exclusive_lock(target, "training"),
        ):
            pass
        assert time.monotonic() - started < 1.0
        holder.kill()  # as kill -9: the lock dies with its process
        holder.wait()
        with exclusive_lock(target, "training"):
            assert (tmp_path / ".model.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / ".model.lock").exists()


def test_a_place_that_cannot_be_written_is_refused_naming_the_destination(tmp_path) -> None:
    from diffusion_studio.core.files import check_named, check_place

    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "notes.txt").write_text("a person's notes\n")
    cases = {
        tmp_path / "loop" / "x.png": "a link on its way points in a loop",
        tmp_path / "notes.txt" / "x.png": "notes.txt is a file, not a folder",
        tmp_path / ("n" * 300) / "x.png": "longer than the file system takes",
        tmp_path / ("n" * 250 + ".png"): "with the temporary name",
    }
    for path, says in cases.items():
        with pytest.raises(InputError, match=says):
            check_place(path)
    assert (
        check_place(tmp_path / "new" / "deeper" / "x.png") == tmp_path / "new" / "deeper" / "x.png"
    )
    for name in (".", "", "/", "a/.."):
        with pytest.raises(InputError, match="names no folder of its own"):
            check_named(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop", "notes.txt"]  # none made
