"""Feed the studio hostile and broken input, a few hundred kinds, and print what it did.

    python scripts/hostile [--only CLASS] [--markdown]

Every row is one input through the command line (in this process, as `diffusion-studio ...`
with its arguments), the window (offscreen) or a child process (kill -9 during writes, two
trainings at once). A row passes when the studio answers as a person needs: a refusal is exit
code 2 with one line on stderr (or one message in the window, the model and settings kept), a
good input gives its result; never a traceback, never a hang (60 s), never a file of the
workspace deleted or changed, never a foreign program run (a fake Ghostscript first on PATH
leaves a marker if anything starts it), never a pickle's code run. Exits 1 if a row fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.helpers

from cases_cli import (
    checkpoint_cases,
    classifier_cases,
    convert_cases,
    eval_cases,
    flag_cases,
    image_cases,
    model_folder_cases,
    train_cases,
    weights_cases,
)
from cases_escapes import escape_cases, record_cases
from cases_window import OPEN_WINDOWS, open_window, process_cases, window_cases
from harness import build_workspace, print_table, run_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="the rows of one class (a part of its name)")
    parser.add_argument("--markdown", action="store_true", help="the table in Markdown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp) / "workspace"
        root.mkdir()
        markers = {"Ghostscript": Path(tmp) / "gs-ran", "a pickle's code": Path(tmp) / "code-ran"}
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        for program in ("gs", "gswin64c", "gswin32c"):
            fake = bin_dir / program
            fake.write_text(f"#!/bin/sh\ntouch '{markers['Ghostscript']}'\nexit 1\n")
            fake.chmod(0o755)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            os.environ[name] = str(Path(tmp) / name.lower())
        previous = Path.cwd()
        os.chdir(root)
        try:
            p = build_workspace(root)
            cases = [
                *model_folder_cases(p, root),
                *weights_cases(p, root, markers["a pickle's code"]),
                *image_cases(p, root),
                *flag_cases(p, root),
                *train_cases(p, root),
                *checkpoint_cases(p, root, markers["a pickle's code"]),
                *eval_cases(p),
                *convert_cases(p, root, markers["a pickle's code"]),
                *classifier_cases(p, root, markers["a pickle's code"]),
                *escape_cases(p, root),
                *window_cases(p, root),
                *record_cases(p, root, open_window),
                *process_cases(p, root),
            ]
            if args.only:
                cases = [c for c in cases if args.only.lower() in c.klass.lower()]
            rows = []
            for case in cases:
                rows.append(run_case(case, root, markers))
                print("." if rows[-1].passed else "F", end="", flush=True, file=sys.stderr)
            print(file=sys.stderr)
        finally:
            for window in OPEN_WINDOWS:
                window.close()
            os.chdir(previous)
    print_table(rows, args.markdown)
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
