"""Shared fixtures: tiny model folders, and per-user folders that are temporary. Nothing here
imports Qt: tests/core and tests/cli run without it (CI checks that)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The per-user folders (autosave, settings, caches) of everything the tests start, child
# processes included, are a temporary folder: a test never writes into a person's home.
_USER_FOLDERS = tempfile.mkdtemp(prefix="diffusion-studio-tests-")
atexit.register(shutil.rmtree, _USER_FOLDERS, ignore_errors=True)
for _name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = os.path.join(_USER_FOLDERS, _name.lower())

import pytest  # noqa: E402  (after the environment is set)

from diffusion_studio.core.model_files import save_model  # noqa: E402
from diffusion_studio.core.schedule import NoiseSchedule  # noqa: E402
from tests.helpers import CLASS_NAMES, make_classifier, make_unet  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _float32_by_default():
    """A run that leaves its precision open gets float32 here, whatever this CPU has: the
    comparisons with diffusers and guided_diffusion are in float32, and a test means the same
    on every machine. For the whole session, so that models loaded by fixtures of any scope
    have it too; the tests of the choice itself (test_precision.py) undo it for themselves.
    Processes a test starts are not under it: they are given --precision where it matters."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("diffusion_studio.core.model.cpu_has_bfloat16", lambda: False)
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A class-conditional tiny model (three classes and a null class) in the flat layout."""
    path = tmp_path_factory.mktemp("models") / "tiny"
    studio = {"name": "tiny", "class_names": CLASS_NAMES, "license": "test"}
    save_model(
        make_unet(num_class_embeds=len(CLASS_NAMES) + 1),
        NoiseSchedule.linear(100),
        path,
        studio=studio,
    )
    return path


@pytest.fixture(scope="session")
def tiny_uncond_dir(tmp_path_factory: pytest.TempPathFactory):
    """An unconditional tiny model with the DDPM paper's schedule at T = 1000."""
    path = tmp_path_factory.mktemp("models") / "tiny-uncond"
    save_model(make_unet(), NoiseSchedule.linear(), path)
    return path


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory):
    """A noise-aware classifier of the tiny models' three classes, 16x16, T = 100."""
    path = tmp_path_factory.mktemp("classifiers") / "tiny-classifier"
    studio = {"name": "tiny classifier", "class_names": CLASS_NAMES}
    save_model(make_classifier(), NoiseSchedule.linear(100), path, studio=studio)
    return path
