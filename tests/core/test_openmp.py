"""torch's OpenMP threads, loaded through the studio, wait for work by sleeping (no spinning),
so that the window's thread is not kept off the CPU while a run goes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

LOAD_TORCH_AFTER_THE_STUDIO = (
    "import diffusion_studio, torch; torch.ones(64, 64) @ torch.ones(64, 64)"
)


def openmp_spin_count(code: str) -> int:
    """GOMP_SPINCOUNT as GNU OpenMP reports it at start (OMP_DISPLAY_ENV), in a fresh process
    with no wait policy of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr + done.stdout)
    if found is None:
        pytest.skip("torch's OpenMP here is not GNU OpenMP (it reports no spin count)")
    return int(found.group(1))


def test_openmp_threads_sleep_at_once_when_torch_comes_through_the_studio() -> None:
    assert openmp_spin_count(LOAD_TORCH_AFTER_THE_STUDIO) == 0


def test_a_wait_policy_a_person_set_stays() -> None:
    code = "import os; os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'; " + LOAD_TORCH_AFTER_THE_STUDIO
    assert openmp_spin_count(code) > 0
