"""The harness of the hostile-input run: a case, its row in the table, the workspace it attacks,
and how one row is run and judged."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shlex
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROW_TIMEOUT_S = 60
REFUSED = "exit 2, one line"
WRITTEN = "exit 0, result written"
WINDOW_REFUSED = "one message, model and settings kept"
Check = Callable[[], tuple[bool, str]]
q = shlex.quote


@dataclass
class Case:
    """One input. `command` is a diffusion-studio command line (run in this process), or
    None when `check` does the work and says (passed, what happened)."""

    klass: str
    what: str
    command: str | None = None
    expected: str = REFUSED
    check: Check | None = None
    wants: tuple[str, ...] = ()  # files a good command must leave
    message: str = ""  # a part the one line must hold
    replaces: tuple[str, ...] = ()  # paths a good row may change (a run's own folder)
    argv: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.argv = shlex.split(self.command) if self.command is not None else []


@dataclass
class Row:
    klass: str
    what: str
    command: str
    expected: str
    observed: str = ""
    passed: bool = False


# --- the workspace ------------------------------------------------------------------------------


def build_workspace(root: Path) -> dict[str, Path]:
    """Tiny models, data, images and a person's files to attack, in `root` (the current folder)."""
    from diffusion_studio.core.model_files import save_model
    from diffusion_studio.core.schedule import NoiseSchedule
    from tests.helpers import make_unet as unet

    studio = {"class_names": ["a", "b", "c"]}
    p = {
        "model": save_model(
            unet(num_class_embeds=4), NoiseSchedule.linear(100), root / "model", studio=studio
        ),
        "uncond": save_model(unet(), NoiseSchedule.linear(100), root / "uncond"),
        "grey": save_model(unet(channels=1), NoiseSchedule.linear(50), root / "grey"),
        "rgba": save_model(unet(channels=4), NoiseSchedule.linear(50), root / "rgba"),
    }
    from tests.helpers import make_classifier

    p["classifier"] = save_model(
        make_classifier(), NoiseSchedule.linear(100), root / "classifier", studio=studio
    )
    rng = np.random.default_rng(0)
    p["data"] = root / "data"
    p["data"].mkdir()
    for i in range(4):
        image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(image).save(p["data"] / f"{i}.png")
    p["image"] = p["data"] / "0.png"
    p["images"] = root / "images"
    p["images"].mkdir()
    Image.new("L", (16, 16), 255).save(p["images"] / "mask.png")
    (root / "thesis.txt").write_text("three years of work\n")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("a person's notes\n")
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    np.savez(
        root / "shapes.npz",
        images=images,
        labels=np.arange(6) % 3,
        categories=np.array(["a", "b", "c"]),
    )
    return p


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under root and the hash of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# --- running one row ----------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`diffusion-studio ARGV` in this process: (exit code, stdout, stderr). A traceback or a
    hang comes back as code -1 with its text."""
    from diffusion_studio.cli import main

    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ROW_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code if isinstance(exc.code, int) else 2
    except _Timeout:
        return -1, out.getvalue(), f"hung for {ROW_TIMEOUT_S} s"
    except BaseException:  # a traceback is the failure this script exists to find
        return -1, out.getvalue(), "Traceback: " + traceback.format_exc(limit=3)
    finally:
        signal.alarm(0)
    return code, out.getvalue(), err.getvalue()


def judge_command(case: Case, root: Path) -> tuple[bool, str]:
    code, _, err = run_cli(case.argv)
    line = err.strip().splitlines()[-1] if err.strip() else ""
    if code == -1 or "Traceback" in err:
        return False, err.strip().replace("\n", " | ")[:300]
    if case.expected == REFUSED:
        ok = code == 2 and err.count("\n") == 1 and case.message in err
        return ok, f"exit {code}: {line.removeprefix('diffusion-studio: error: ')}"
    missing = [w for w in case.wants if not (root / w).is_file()]
    said = f" ({line})" if line else ""
    return code == 0 and not missing, f"exit {code}, " + (
        f"missing {missing}" if missing else "written"
    ) + said


def run_case(case: Case, root: Path, markers: dict[str, Path]) -> Row:
    """Run one case and judge it, and what it did to the workspace; then put the workspace
    back as it was (a good row's outputs go)."""
    shown = f"diffusion-studio {case.command}" if case.command is not None else case.what
    row = Row(case.klass, case.what, shown, case.expected)
    before = fingerprint(root)
    started = time.monotonic()
    try:
        passed, observed = judge_command(case, root) if case.check is None else case.check()
    except BaseException:
        passed, observed = False, "Traceback: " + traceback.format_exc(limit=3)
    seconds = time.monotonic() - started
    after = fingerprint(root)
    allowed = case.replaces or ("\0",)
    changed = [p for p, d in before.items() if after.get(p) != d and not p.startswith(allowed)]
    written = [p for p in after if p not in before]
    problems = [f"changed or deleted {changed[:3]}"] if changed else []
    if case.expected != WRITTEN and case.check is None and written:
        problems.append(f"wrote {written[:3]}")
    for what, marker in markers.items():
        if marker.exists():
            problems.append(f"{what} ran")
            marker.unlink()
    if case.expected == REFUSED and case.check is None and seconds > 5:
        problems.append(f"refused only after {seconds:.1f} s")
    row.observed = " ".join((observed + ("; " + "; ".join(problems) if problems else "")).split())
    row.passed = passed and not problems
    for path in written:
        with contextlib.suppress(OSError):
            (root / path).unlink()
    for folder in sorted({p.parent for p in root.rglob("*")} - {root}, reverse=True):
        if folder.is_dir() and not any(folder.iterdir()) and folder.name != "empty":
            with contextlib.suppress(OSError):
                folder.rmdir()
    return row


def print_table(rows: list[Row], markdown: bool) -> None:
    widths = (16, 34, 44, 26, 60, 7)
    header = ("class", "input", "command", "expected", "observed", "verdict")

    def cell(text: str, width: int) -> str:
        text = text.replace("|", "/")
        return text if markdown or len(text) <= width else text[: width - 1] + "~"

    if markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    else:
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        cells = (r.klass, r.what, r.command, r.expected, r.observed, "ok" if r.passed else "FAIL")
        if markdown:
            print("| " + " | ".join(cell(c, 0) for c in cells) + " |")
        else:
            print("  ".join(cell(c, w).ljust(w) for c, w in zip(cells, widths)))
    counts = Counter(r.klass for r in rows)
    failed = Counter(r.klass for r in rows if not r.passed)
    print()
    for klass, count in counts.items():
        print(f"{klass:<24} {count:>4} inputs, {failed[klass]} failed")
    print(f"{'all':<24} {len(rows):>4} inputs, {sum(failed.values())} failed")
