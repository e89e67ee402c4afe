"""The one writer of results, for the command line and the window alike: a run's files are
planned (plan_outputs, typed: an image, a grid, a mask, a source, the steps, an earlier file
written again), checked all together, and written with `write`.

A run's files share a stem, by default its run number in the folder (A1111's 00012-...):
STEM-SEED.png for each image, STEM-grid.png, STEM-mask.png and STEM-source.png (inpainting),
STEM-steps.gif or .webp. Two runs never share a stem, so they never collide. Every image
carries its RunRecord, so that any output can be made again bit for bit on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import (
    ANIMATIONS,
    labelled_grid,
    make_grid,
    save_animation,
    save_png,
)
from diffusion_studio.core.files import check_file_target
from diffusion_studio.core.job import Job
from diffusion_studio.core.masks import save_mask
from diffusion_studio.core.record import RunRecord, parameters_text, read_record
from diffusion_studio.core.result import RunResult, Trajectory

ANIMATION_SUFFIXES = tuple(ANIMATIONS)


@dataclass(frozen=True)
class GridLabels:
    """A grid's labels: a text per row (left), per column (above) and, optionally, per image
    (under it: a cell's distance to the reference, say)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageFile:
    """Image `index` of run `run`, with its record."""

    path: Path
    index: int = 0
    run: int = 0

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        result = results[self.run]
        record = RunRecord.of(result.job, self.index)
        job = result.job
        return save_png(
            self.path,
            result.images[self.index],
            metadata=record.metadata(),
            parameters=parameters_text(record.request, job.model, job.inpaint, job.classifier),
            attachments=record.attachments(),
            upscale=upscale,
            overwrite=overwrite,
        )


@dataclass(frozen=True)
class GridFile:
    """The images of runs `runs` (default all), in order, as one PNG of `columns` columns,
    labelled when `labels` are given; its record is the first image's, with every image's
    request in "requests" and, with labels, every image's row and column in "cells"."""

    path: Path
    columns: int | None = None
    labels: GridLabels | None = None
    runs: tuple[int, ...] | None = None

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        chosen = [results[i] for i in self.runs] if self.runs is not None else list(results)
        images = np.concatenate([r.images for r in chosen])
        columns = self.columns or int(np.ceil(np.sqrt(len(images))))
        first = chosen[0].job
        record = RunRecord.of(first, 0)
        metadata: dict[str, Any] = record.metadata()
        metadata["requests"] = [
            r.job.request.for_image(i).to_dict() for r in chosen for i in range(len(r.images))
        ]
        if self.labels is not None:
            grid = labelled_grid(images, columns, self.labels.rows, self.labels.columns,
                                 self.labels.notes)  # fmt: skip
            metadata["grid"] = {
                "rows": list(self.labels.rows),
                "columns": list(self.labels.columns),
                "cells": [[k // columns, k % columns] for k in range(len(images))],
                "notes": list(self.labels.notes),
            }
        else:
            grid = make_grid(images, columns=columns)
        parameters = parameters_text(record.request, first.model, first.inpaint, first.classifier)
        return save_png(self.path, grid, metadata=metadata, parameters=parameters,
                        attachments=record.attachments(), upscale=upscale,
                        overwrite=overwrite)  # fmt: skip


@dataclass(frozen=True, eq=False)
class MaskFile:
    """An inpaint_mask (H, W) bool, written white = generate."""

    path: Path
    mask: np.ndarray

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        mask = np.repeat(np.repeat(self.mask, upscale, axis=0), upscale, axis=1)
        return save_mask(mask, self.path, overwrite=overwrite)


@dataclass(frozen=True, eq=False)
class SourceFile:
    """A fitted source image (H, W, C) uint8."""

    path: Path
    source: np.ndarray

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        return save_png(self.path, self.source, upscale=upscale, overwrite=overwrite)


@dataclass(frozen=True)
class StepsFile:
    """The steps of run `run` (x_t beside the predicted x_0) as an animation, of image
    `index` or of the batch (None)."""

    path: Path
    index: int | None = None
    run: int = 0

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        frames = trajectory_frames(results[self.run].trajectory, self.index)
        if upscale > 1:
            frames = [np.repeat(np.repeat(f, upscale, axis=0), upscale, axis=1) for f in frames]
        return save_animation(self.path, frames, overwrite=overwrite)


@dataclass(frozen=True)
class CopyFile:
    """An image the studio wrote before (a file of an earlier session), written again with
    its record (and its parameters text)."""

    path: Path
    written: Path

    def save(self, results: Sequence[RunResult], upscale: int, overwrite: bool) -> Path:
        record = read_record(self.written)
        if record is None:
            raise InputError(f"{self.written} holds no record of the studio")
        with Image.open(self.written, formats=["PNG"]) as im:
            parameters = im.info.get("parameters")
            image = np.asarray(im.convert(im.mode if im.mode in ("L", "RGB", "RGBA") else "RGB"))
        return save_png(self.path, image, metadata=record.metadata(), parameters=parameters,
                        attachments=record.attachments(), upscale=upscale,
                        overwrite=overwrite)  # fmt: skip


Output = ImageFile | GridFile | MaskFile | SourceFile | StepsFile | CopyFile


def write(
    outputs: Sequence[Output],
    results: Sequence[RunResult] = (),
    *,
    upscale: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Write `outputs` (of `results`, each output naming its run by index): every path is
    checked first (check_outputs), then each file is written atomically. Returns the files."""
    check_outputs(outputs, overwrite)
    return [output.save(results, upscale, overwrite) for output in outputs]


def check_outputs(outputs: Sequence[Output], overwrite: bool = False) -> None:
    """Refuse, before a run, a file it would write that exists (unless `overwrite`), that
    cannot be written there, or that another output of the same run names too."""
    paths = [output.path for output in outputs]
    for path in paths:
        check_file_target(path, overwrite=overwrite)
    if len({p.resolve() for p in paths}) != len(paths):
        raise InputError("two outputs of this run have the same name; choose other names")


def plan_outputs(
    job: Job,
    folder: str | Path,
    stem: str,
    *,
    run: int = 0,
    images: Sequence[int] | None = None,
    single_name: str | None = None,
    grid: str | Path | bool | None = None,
    trajectory: str | Path | None = None,
    inputs: bool = True,
) -> list[Output]:
    """The files of a run of `job` (run `run` of the results `write` gets): STEM-SEED.png for
    each image of `images` (default the whole batch; `single_name` instead when it is one
    image); with `grid` STEM-grid.png (or that path); the inpainting's STEM-mask.png (white =
    generate) and STEM-source.png with `inputs`; the steps as an animation with `trajectory`
    (a suffix of ANIMATION_SUFFIXES for STEM-steps.gif or .webp, or a path), of one image when
    `images` names one of a batch."""
    folder = Path(folder)
    indices = list(range(job.request.batch_size) if images is None else images)
    outputs: list[Output] = []
    for i in indices:
        name = (
            single_name
            if single_name and len(indices) == 1
            else f"{stem}-{job.request.seed + i}.png"
        )
        outputs.append(ImageFile(folder / name, i, run))
    if grid:
        path = folder / f"{stem}-grid.png" if grid is True else Path(grid)
        outputs.append(GridFile(path, runs=(run,)))
    if inputs and job.source is not None and job.mask is not None:
        outputs += [MaskFile(folder / f"{stem}-mask.png", job.mask)]
        outputs += [SourceFile(folder / f"{stem}-source.png", job.source)]
    if trajectory:
        one = indices[0] if len(indices) == 1 and job.request.batch_size > 1 else None
        named = str(trajectory) not in ANIMATION_SUFFIXES
        path = Path(trajectory) if named else folder / f"{stem}-steps{trajectory}"
        outputs.append(StepsFile(path, one, run))
    return outputs


def copied_outputs(written: Path, folder: Path, stem: str, *, inputs: bool = True) -> list[Output]:
    """An image of an earlier session written again in `folder` as STEM-SEED.png with its
    record, and with `inputs` an inpainting's mask and source (from its record)."""
    record = read_record(written)
    if record is None:
        raise InputError(f"{written} holds no record of the studio")
    outputs: list[Output] = [CopyFile(folder / f"{stem}-{record.request.seed}.png", written)]
    if inputs and record.source is not None and record.mask is not None:
        outputs += [MaskFile(folder / f"{stem}-mask.png", record.mask)]
        outputs += [SourceFile(folder / f"{stem}-source.png", record.source)]
    return outputs


def trajectory_frames(trajectory: Trajectory, image: int | None = None) -> list[np.ndarray]:
    """The animation's frames: x_t beside the predicted x_0, of one image or of the batch."""
    frames = []
    for frame in trajectory.frames:
        x_t, x0 = frame.x_t, frame.x0_pred
        if image is not None:
            x_t, x0 = x_t[image : image + 1], x0[image : image + 1]
        columns = int(np.ceil(np.sqrt(len(x_t))))
        pair = [make_grid(x_t, columns=columns), make_grid(x0, columns=columns)]
        frames.append(make_grid(np.stack(pair), columns=2))
    return frames
