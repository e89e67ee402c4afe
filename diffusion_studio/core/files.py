"""The one rule for writing: atomic files, and nothing a person made replaced or deleted.

Every writer of the project goes through here. A file that exists is replaced only when
the caller was asked to (`--force`, the window's "Replace"); a folder is replaced only if it
is a model folder, that is, it holds nothing but the files a diffusers model folder and the
studio write (config.json, weights, scheduler_config.json, diffusion_studio.json; unet/ and
scheduler/ in the pipeline layout). An output folder may not be, hold or lie inside the
current folder, the training data or the checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from diffusion_studio.core.errors import InputError, OutputExistsError

# The files of a model folder, flat layout or a pipeline's unet/ and scheduler/.
MODEL_FILES = frozenset(
    {
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_pytorch_model.bin",
        "diffusion_pytorch_model.fp16.bin",
        "scheduler_config.json",
        "diffusion_studio.json",
        "model_index.json",
    }
)
MODEL_SUBFOLDERS = frozenset({"unet", "scheduler"})


TEMPORARY_EXTRA = len("..01234567.tmp")  # atomic_write's name: .NAME.RANDOM.tmp


def check_place(path: str | os.PathLike[str]) -> Path:
    """Raise, before anything is written, for a path that cannot be written: a link in it that
    loops, a part of it that is a file (or a device, /dev/null), a name longer than the file
    system takes, a folder that cannot be written to. The message names the destination, never
    a temporary file. Folders that do not exist yet are fine: they are made when writing."""
    path = Path(path)
    try:
        path.resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError up to Python 3.12)
        raise InputError(f"{path} cannot be reached: a link on its way points in a loop") from None
    folder, new = path.parent, [path.name]
    try:
        while not folder.exists():
            if folder.is_symlink():
                raise InputError(f"{folder} is a link to nothing: {path} cannot be written")
            new.append(folder.name)
            folder = folder.parent
        if not folder.is_dir():
            raise InputError(f"{folder} is a file, not a folder: {path} cannot be written there")
        try:
            limit = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # no such query on this system
            limit = 255
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InputError(
                f"a name in {str(path)[:80]}... is longer than the file system takes"
            ) from None
        raise InputError(f"{path} cannot be written: {exc.strerror or exc}") from None
    for name in new:
        extra = TEMPORARY_EXTRA if name == path.name else 0
        if len(os.fsencode(name)) + extra > limit:
            raise InputError(
                f"the name {name[:40]}... is longer than the file system takes ({limit} bytes"
                f"{', with the temporary name it is written under' if extra else ''}): "
                f"{str(path)[:80]}... cannot be written"
            )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{folder} cannot be written to: {path} cannot be made there")
    return path


def check_file_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Raise unless `path` may be written as a file: new, or an existing file with `overwrite`,
    in a place that can be written (check_place).

    A folder of that name is never replaced, whatever `overwrite` says.
    """
    path = check_place(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(path)
    return path


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *, overwrite: bool = False
) -> Path:
    """Write a file through `write(f)` into a temporary file beside it, then os.replace it in.

    A crash or an error leaves either the old file or none, never half a file. Raises
    OutputExistsError if the file exists and `overwrite` is False.
    """
    path = check_file_target(path, overwrite=overwrite)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with 0o666 lets the umask decide the mode, as for any new file (mkstemp: 0600)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:  # said of the destination, not of the hidden temporary name
        raise InputError(f"{path} cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        check_file_target(path, overwrite=overwrite)  # nothing appeared there meanwhile
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def not_model_files(folder: Path) -> list[str]:
    """What in `folder` is not part of a model folder (relative names); [] for a model folder."""
    strangers = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and entry.name in MODEL_SUBFOLDERS:
            strangers += [f"{entry.name}/{name}" for name in not_model_files(entry)]
        elif entry.is_symlink() or not entry.is_file() or entry.name not in MODEL_FILES:
            strangers.append(entry.name + ("/" if entry.is_dir() else ""))
    return strangers


def check_named(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """A folder to make needs a name of its own: "", ".", "/", "..", "x/.." have none (they
    are folders that exist, the current one or one above)."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        shown = str(path) if str(path) else '""'
        raise InputError(f"{flag} {shown} names no folder of its own: give the folder a name")
    return path


def check_folder_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Raise unless `path` may be written as a model folder: new, or (with `overwrite`) an
    existing model folder, which then holds nothing a person would miss."""
    path = check_place(check_named(path))
    if path.is_symlink():
        raise InputError(f"{path} is a link; give the folder itself")
    if not path.exists():
        return path
    if not path.is_dir():
        raise InputError(f"{path} is a file; give a folder name for the model")
    if not overwrite:
        raise OutputExistsError(path)
    strangers = not_model_files(path)
    if strangers:
        more = f" and {len(strangers) - 3} more" if len(strangers) > 3 else ""
        shown = ", ".join(strangers[:3]) + more
        raise InputError(
            f"{path} is not a model folder (it holds {shown}), so it is never replaced; "
            "choose another --out"
        )
    return path


def replace_folder(staging: Path, path: Path, *, overwrite: bool) -> None:
    """Move a finished folder `staging` to `path`; an existing `path` must be a model folder
    (and `overwrite` given). The old folder is moved aside first, so a failure keeps it."""
    check_folder_target(path, overwrite=overwrite)
    if not path.exists():
        staging.replace(path)
        return
    old = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
    path.replace(old)
    try:
        staging.replace(path)
    except BaseException:
        old.replace(path)
        raise
    shutil.rmtree(old)


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_apart(
    out: str | os.PathLike[str],
    others: Mapping[str, str | os.PathLike[str]],
    flag: str = "--out",
) -> None:
    """Refuse an output folder that is the current folder or one above it, or that is, holds
    or lies inside one of `others` (a label for the message -> a path: data, checkpoints)."""
    resolved = check_place(out).resolve()
    here = Path.cwd().resolve()
    if _is_within(here, resolved):
        where = "the current folder" if resolved == here else "a folder above the current one"
        raise InputError(f"{flag} {out} is {where}; give it a folder of its own")
    for label, other in others.items():
        theirs = Path(other).resolve()
        if resolved == theirs:
            relation = "is"
        elif _is_within(resolved, theirs):
            relation = "lies inside"
        elif _is_within(theirs, resolved):
            relation = "holds"
        else:
            continue
        raise InputError(f"{flag} {out} {relation} the {label} ({other}); keep them apart")


@contextlib.contextmanager
def exclusive_lock(target: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold a lock named after `target` (a hidden .lock file beside it) for as long as the
    block runs; a second process asking for it is refused at once with InputError. The lock
    dies with its process (kill -9 included), so it is never stale."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.with_name(f".{target.name}.lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise InputError(f"another {what} is writing {target} now; wait for it to end")
        try:  # the file may have been removed by the holder that just let go: start again
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # closing lets go of the lock


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
