"""What a run leaves on disk, and reading it back: the RunRecord every written PNG carries,
and write_result, the one writer of results for the command line and the window alike.

A run's files share a stem, by default its run number in the folder (A1111's 00012-...):
STEM-SEED.png for each image, STEM-grid.png, STEM-mask.png and STEM-source.png (inpainting),
STEM-steps.gif or .webp. Two runs never share a stem, so they never collide. The record of an
inpainting holds its source and mask, so that any output can be made again bit for bit on the
same device.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffusion_studio.core.classifier import ClassifierInfo
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import (
    ANIMATIONS,
    METADATA_KEY,
    make_grid,
    parse_metadata,
    read_attachment,
    read_png_texts,
    save_animation,
    save_png,
)
from diffusion_studio.core.files import check_file_target
from diffusion_studio.core.images import to_pil
from diffusion_studio.core.limits import MAX_RESOLUTION
from diffusion_studio.core.masks import save_mask
from diffusion_studio.core.model import ModelInfo
from diffusion_studio.core.request import SAMPLERS, SampleRequest
from diffusion_studio.core.run import Job, RunResult, Trajectory

ANIMATION_SUFFIXES = tuple(ANIMATIONS)
_RUN_NUMBER = re.compile(r"^(\d{5,})-")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What a written PNG says of how it was made: the request of that image alone, the model
    (its name and the short hash of its weights, never its folder: a picture shared must not
    tell where its maker keeps files), and for an inpainting its source (H, W, C) uint8 and
    mask (H, W) bool."""

    request: SampleRequest
    model: str
    model_hash: str  # ModelInfo.short_hash; "" for a network made in memory
    version: str
    source: np.ndarray | None = None
    mask: np.ndarray | None = None
    classifier: str = ""  # the guiding classifier's name and short hash, when it guided
    classifier_hash: str = ""

    @property
    def inpaint(self) -> bool:
        return self.source is not None

    @classmethod
    def of(cls, job: Job, index: int) -> RunRecord:
        from diffusion_studio import __version__

        request = job.request.for_image(index)
        guide = job.classifier
        return cls(request, job.model.name, job.model.short_hash, __version__, job.source,
                   job.mask, guide.name if guide else "",
                   guide.weights_hash[:10] if guide else "")  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        """The JSON part of the record (the source and mask travel as attachments)."""
        return {
            "request": self.request.to_dict(),
            "model": self.model,
            "model_hash": self.model_hash,
            "inpaint": self.inpaint,
            "version": self.version,
            **({"classifier": self.classifier, "classifier_hash": self.classifier_hash}
               if self.classifier else {}),
        }  # fmt: skip

    def attachments(self) -> dict[str, bytes]:
        if self.source is None or self.mask is None:
            return {}
        return {"source": _png_bytes(self.source), "mask": _png_bytes(self.mask * np.uint8(255))}

    def job(self, model: ModelInfo, classifier: ClassifierInfo | None = None) -> Job:
        """The job that makes this image again with `model` (its source and mask as they were
        written, at the model's size), and the classifier when it was guided."""
        return Job.prepare(
            self.request, model, image=self.source, mask=self.mask, classifier=classifier
        )


def parameters_text(
    request: SampleRequest,
    info: ModelInfo,
    inpaint: bool,
    classifier: ClassifierInfo | None = None,
) -> str:
    """The request in A1111's "parameters" format, which other tools read from a PNG."""
    names = info.class_names or (classifier.class_names if classifier else ())
    prompt = names[request.class_label] if request.class_label is not None and names else ""
    height, width = info.resolution
    fields = {
        "Steps": request.num_inference_steps,
        "Sampler": SAMPLERS[request.sampler].label,
        "Schedule type": request.timestep_spacing or info.timestep_spacing,
        "CFG scale": request.guidance_scale,
        "Seed": request.seed,
        "Size": f"{width}x{height}",
        "Model": info.name,
    }
    if info.weights_hash:
        fields["Model hash"] = info.short_hash
    if "eta" in request.spec.options:
        fields["Eta"] = request.eta
    if "use_clipped_model_output" in request.spec.options and not request.use_clipped_model_output:
        fields["DDIM eps"] = "unclipped"
    if classifier is not None and request.classifier_scale:
        fields["Classifier"] = classifier.name
        fields["Classifier scale"] = request.classifier_scale
    if inpaint:
        fields["RePaint jump length"] = request.jump_length
        fields["RePaint resamples"] = request.jump_n_sample
    return prompt + "\n" + ", ".join(f"{k}: {v}" for k, v in fields.items())


def read_record(path: str | Path) -> RunRecord | None:
    """The record of a PNG the studio wrote; None for a PNG without one. A damaged or hostile
    record is one InputError naming the file, and nothing of it is applied."""
    texts = read_png_texts(path)
    if METADATA_KEY not in texts:
        return None
    try:
        metadata = parse_metadata(texts[METADATA_KEY])
        return _record_from(metadata, texts)
    except InputError as exc:
        raise InputError(f"the settings in {Path(path).name} are unreadable: {exc}") from None


def _record_from(metadata: Mapping[str, Any], texts: Mapping[str, str]) -> RunRecord:
    request = metadata.get("request")
    if not isinstance(request, Mapping):
        raise InputError('it has no settings ("request") object')
    fields = {}
    # model_path and classifier_path: the folders that earlier records named; read, not used
    for key, limit in (("model", 200), ("model_hash", 64), ("version", 40), ("classifier", 200),
                       ("classifier_hash", 64), ("model_path", 4096),
                       ("classifier_path", 4096)):  # fmt: skip
        value = metadata.get(key, "")
        if not isinstance(value, str) or len(value) > limit:
            raise InputError(f"its {key} is not a text of at most {limit} characters")
        fields[key] = value
    for key in ("model_hash", "classifier_hash"):
        if fields[key].strip("0123456789abcdef"):
            raise InputError(f"its {key} is not a hexadecimal hash")
    del fields["model_path"], fields["classifier_path"]
    inpaint = metadata.get("inpaint", False)
    if not isinstance(inpaint, bool):
        raise InputError("its inpaint flag is not true or false")
    requests = metadata.get("requests", [])
    if not isinstance(requests, list) or len(requests) > 100_000:
        raise InputError("its list of requests is not a list")
    for each in requests:  # a grid's rows: checked too, though only the first is applied
        SampleRequest.from_dict(each)
    source = mask = None
    if inpaint:
        source = _image_attachment(texts, "source", None)
        mask = _image_attachment(texts, "mask", "L") >= 128
        if mask.shape != source.shape[:2] or mask.ndim != 2:
            raise InputError("its mask and source are of different sizes")
    return RunRecord(SampleRequest.from_dict(request), source=source, mask=mask, **fields)


def _image_attachment(texts: Mapping[str, str], name: str, mode: str | None) -> np.ndarray:
    data = read_attachment(texts, name)
    if data is None:
        raise InputError(f"it is an inpainting without its {name}")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if max(im.size) > MAX_RESOLUTION:
                raise InputError(f"its {name} is larger than {MAX_RESOLUTION} pixels")
            image = im.convert(mode) if mode else im.copy()
    except Image.DecompressionBombError:
        raise InputError(f"its {name} is larger than {MAX_RESOLUTION} pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"its {name} is not a readable PNG ({exc})") from None
    if image.mode not in ("L", "RGB", "RGBA"):
        raise InputError(f"its {name} has colour mode {image.mode}")
    array = np.asarray(image)
    return array if mode else array.reshape(image.height, image.width, -1)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    to_pil(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --- writing a result ---------------------------------------------------------------------------


def next_run_number(folder: Path) -> int:
    """1 more than the highest run number of the files in `folder` (1 for a new folder, or one
    that cannot be read: writing there is refused with the reason by core.files)."""
    try:
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        return 1
    numbers = [int(m.group(1)) for name in names if (m := _RUN_NUMBER.match(name))]
    return max(numbers, default=0) + 1


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


Output = tuple[Path, str, int | None]
"""A file of a result: its path, what it holds (image, grid, mask, source, steps), the image."""


def plan_outputs(
    job: Job,
    folder: str | Path,
    stem: str,
    *,
    images: Sequence[int] | None = None,
    single_name: str | None = None,
    grid: str | Path | bool | None = None,
    trajectory: str | Path | None = None,
    inputs: bool = True,
) -> list[Output]:
    """The files write_result makes for a run of `job`: STEM-SEED.png for each image of
    `images` (default the whole batch; `single_name` instead when it is one image); with
    `grid` STEM-grid.png (or that path); the inpainting's STEM-mask.png (white = generate) and
    STEM-source.png with `inputs`; the steps as an animation with `trajectory` (a suffix of
    ANIMATION_SUFFIXES for STEM-steps.gif or .webp, or a path), of one image when `images`
    names one of a batch."""
    folder = Path(folder)
    indices = list(range(job.request.batch_size) if images is None else images)
    outputs: list[Output] = []
    for i in indices:
        name = (
            single_name
            if single_name and len(indices) == 1
            else f"{stem}-{job.request.seed + i}.png"
        )
        outputs.append((folder / name, "image", i))
    if grid:
        outputs.append((folder / f"{stem}-grid.png" if grid is True else Path(grid), "grid", None))
    if inputs and job.inpaint:
        outputs += [(folder / f"{stem}-mask.png", "mask", None)]
        outputs += [(folder / f"{stem}-source.png", "source", None)]
    if trajectory:
        one = indices[0] if len(indices) == 1 and job.request.batch_size > 1 else None
        named = str(trajectory) not in ANIMATION_SUFFIXES
        path = Path(trajectory) if named else folder / f"{stem}-steps{trajectory}"
        outputs.append((path, "steps", one))
    return outputs


def check_outputs(outputs: Sequence[Output], overwrite: bool = False) -> None:
    """Refuse, before a run, a file it would write that exists (unless `overwrite`), or that
    another output of the same run names too."""
    paths = [path for path, _, _ in outputs]
    for path in paths:
        check_file_target(path, overwrite=overwrite)
    if len({p.resolve() for p in paths}) != len(paths):
        raise InputError("two outputs of this run have the same name; choose other names")


def write_result(
    result: RunResult,
    folder: str | Path,
    *,
    stem: str | None = None,
    upscale: int = 1,
    overwrite: bool = False,
    **what: Any,
) -> list[Path]:
    """Write a result in `folder`, the files of plan_outputs (`what` is its keywords); STEM
    defaults to the next run number of the folder. Every path is checked before anything is
    written; returns the files written."""
    stem = stem or f"{next_run_number(Path(folder)):05d}"
    outputs = plan_outputs(result.job, folder, stem, **what)
    check_outputs(outputs, overwrite)
    return [write_output(result, output, upscale, overwrite) for output in outputs]


def write_grid(
    results: Sequence[RunResult],
    path: str | Path,
    *,
    columns: int | None = None,
    overwrite: bool = False,
) -> Path:
    """All images of `results` as one PNG, a row per result when `columns` is the batch size
    (--class all), with the record of the first image and every request in "requests"."""
    images = np.concatenate([r.images for r in results])
    columns = columns or int(np.ceil(np.sqrt(len(images))))
    first = results[0].job
    record = RunRecord.of(first, 0)
    metadata = record.metadata()
    metadata["requests"] = [
        r.job.request.for_image(i).to_dict() for r in results for i in range(len(r.images))
    ]
    parameters = parameters_text(record.request, first.model, first.inpaint, first.classifier)
    return save_png(
        path,
        make_grid(images, columns=columns),
        metadata=metadata,
        parameters=parameters,
        attachments=record.attachments(),
        overwrite=overwrite,
    )


def write_output(
    result: RunResult, output: Output, upscale: int = 1, overwrite: bool = False
) -> Path:
    """Write one file of plan_outputs for `result`."""
    path, kind, index = output
    job = result.job
    if kind == "grid":
        return write_grid([result], path, overwrite=overwrite)
    if kind == "image":
        record = RunRecord.of(job, index or 0)
        parameters = parameters_text(record.request, job.model, job.inpaint, job.classifier)
        return save_png(
            path,
            result.images[index or 0],
            metadata=record.metadata(),
            parameters=parameters,
            attachments=record.attachments(),
            upscale=upscale,
            overwrite=overwrite,
        )
    if kind == "mask":
        mask = np.repeat(np.repeat(job.mask, upscale, axis=0), upscale, axis=1)
        return save_mask(mask, path, overwrite=overwrite)
    if kind == "source":
        return save_png(path, job.source, upscale=upscale, overwrite=overwrite)
    frames = trajectory_frames(result.trajectory, index)
    if upscale > 1:
        frames = [np.repeat(np.repeat(f, upscale, axis=0), upscale, axis=1) for f in frames]
    return save_animation(path, frames, overwrite=overwrite)


def copy_written(
    path: Path,
    folder: Path,
    stem: str,
    *,
    inputs: bool = True,
    upscale: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Write an image the studio wrote before (a file of an earlier session) again in `folder`
    as STEM-SEED.png with its record, and with `inputs` an inpainting's mask and source."""
    record = read_record(path)
    if record is None:
        raise InputError(f"{path} holds no record of the studio")
    with Image.open(path, formats=["PNG"]) as im:
        parameters = im.info.get("parameters")
        image = np.asarray(im.convert(im.mode if im.mode in ("L", "RGB", "RGBA") else "RGB"))
    outputs = [folder / f"{stem}-{record.request.seed}.png"]
    if inputs and record.inpaint:
        outputs += [folder / f"{stem}-mask.png", folder / f"{stem}-source.png"]
    for output in outputs:
        check_file_target(output, overwrite=overwrite)
    written = [
        save_png(
            outputs[0],
            image,
            metadata=record.metadata(),
            parameters=parameters,
            attachments=record.attachments(),
            upscale=upscale,
            overwrite=overwrite,
        )
    ]
    if len(outputs) > 1 and record.mask is not None and record.source is not None:
        mask = np.repeat(np.repeat(record.mask, upscale, axis=0), upscale, axis=1)
        written.append(save_mask(mask, outputs[1], overwrite=overwrite))
        written.append(save_png(outputs[2], record.source, upscale=upscale, overwrite=overwrite))
    return written


def read_written(folder: Path, limit: int = 200) -> list[tuple[Path, RunRecord]]:
    """The images with a record in `folder` (newest run first), for the gallery after a
    restart; files that are not the studio's, or damaged, are passed over."""
    found = []
    try:
        names = sorted((p for p in folder.iterdir() if _RUN_NUMBER.match(p.name)), reverse=True)
    except OSError:  # gone, not a folder, or unreadable: nothing of it
        return found
    for path in names:
        if path.suffix.lower() != ".png" or path.stem.endswith(("-mask", "-source", "-grid")):
            continue
        try:
            record = read_record(path)
        except InputError:
            continue
        if record is not None:
            found.append((path, record))
        if len(found) >= limit:
            break
    return found
