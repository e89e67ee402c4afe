"""What a written PNG says of how it was made, and reading it back: the RunRecord (the request,
the model by name and hash, an inpainting's source and mask, the lineage of a fork or a cell),
schema-checked on the way in; the run numbers of a folder and the records found there. The
writer is core/write.py.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffusion_studio.core.errors import InputError
from diffusion_studio.core.export import (
    METADATA_KEY,
    parse_metadata,
    read_attachment,
    read_png_texts,
)
from diffusion_studio.core.images import to_pil
from diffusion_studio.core.info import ClassifierInfo, ModelInfo
from diffusion_studio.core.job import Cell, Job, Restore
from diffusion_studio.core.limits import MAX_RESOLUTION
from diffusion_studio.core.request import SAMPLERS, SampleRequest

_RUN_NUMBER = re.compile(r"^(\d{5,})-")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What a written PNG says of how it was made: the request of that image alone, the model
    (its name and the short hash of its weights, never its folder: a picture shared must not
    tell where its maker keeps files), for an inpainting its source (H, W, C) uint8 and mask
    (H, W) bool, and its lineage: for a fork the parent's record and the step it went on
    from, for a cell of a workflow's table its place there."""

    request: SampleRequest
    model: str
    model_hash: str  # ModelInfo.short_hash; "" for a network made in memory
    version: str
    source: np.ndarray | None = None
    mask: np.ndarray | None = None
    classifier: str = ""  # the guiding classifier's name and short hash, when it guided
    classifier_hash: str = ""
    parent: RunRecord | None = None  # a fork's parent (its source and mask are this one's)
    at_step: int = 0
    cell: Cell | None = None
    restore: Restore | None = None  # DDNM's restoration: its operator and observation
    windows: tuple[tuple[int, int], ...] = ()  # MultiDiffusion's, on a canvas past the model

    @property
    def inpaint(self) -> bool:
        return self.source is not None

    @classmethod
    def of(cls, job: Job, index: int) -> RunRecord:
        from diffusion_studio import __version__

        one = job.for_image(index)
        guide = one.classifier
        parent = cls.of(one.fork.parent, 0) if one.fork else None
        return cls(one.request, one.model.name, one.model.short_hash, __version__, one.source,
                   one.mask, guide.name if guide else "",
                   guide.weights_hash[:10] if guide else "", parent,
                   one.fork.at_step if one.fork else 0, one.cell, one.restore,
                   one.windows)  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        """The JSON part of the record (the source and mask travel as attachments)."""
        lineage: dict[str, Any] = {}
        if self.parent is not None:
            lineage["fork"] = {"parent": self.parent.metadata(), "at_step": self.at_step}
        if self.cell is not None:
            lineage["cell"] = dataclasses.asdict(self.cell)
        if self.restore is not None:
            lineage["restore"] = {"operator": self.restore.operator, "factor": self.restore.factor}
        if self.windows:
            lineage["windows"] = [list(w) for w in self.windows]
        return {
            "request": self.request.to_dict(),
            "model": self.model,
            "model_hash": self.model_hash,
            "inpaint": self.inpaint,
            "version": self.version,
            **({"classifier": self.classifier, "classifier_hash": self.classifier_hash}
               if self.classifier else {}),
            **lineage,
        }  # fmt: skip

    def attachments(self) -> dict[str, bytes]:
        files = {}
        if self.source is not None and self.mask is not None:
            files = {
                "source": png_bytes(self.source),
                "mask": png_bytes(self.mask * np.uint8(255)),
            }
        if self.restore is not None and self.restore.observation is not None:
            files["observation"] = png_bytes(self.restore.observation)
        return files

    def job(self, model: ModelInfo, classifier: ClassifierInfo | None = None) -> Job:
        """The job that makes this image again with `model` (its source and mask as they were
        written, at the model's size), and the classifier when it was guided; a fork's replays
        its parent up to its step first."""
        if self.parent is not None:
            parent = self.parent.job(model, classifier if self.parent.classifier else None)
            return dataclasses.replace(
                parent.forked(self.request, self.at_step, classifier), cell=self.cell
            )
        restore = self.restore
        if restore is not None and restore.operator != "mask":
            restore.check(model, tiled=bool(self.windows))
            job = Job.prepare(self.request, model, classifier=classifier)
            job = dataclasses.replace(job, restore=restore, windows=self.windows)
        else:
            consistency = "ddnm" if restore is not None else "repaint"
            job = Job.prepare(self.request, model, image=self.source, mask=self.mask,
                              classifier=classifier, consistency=consistency)  # fmt: skip
        return dataclasses.replace(job, cell=self.cell)


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
    if (request.precision or info.precision) != "float32":
        fields["Precision"] = request.precision or info.precision
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


MAX_LINEAGE = 64  # forks of forks a record may hold


def _record_from(
    metadata: Mapping[str, Any], texts: Mapping[str, str], depth: int = 0
) -> RunRecord:
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
        SampleRequest.from_record(each)
    source = mask = None
    if inpaint:
        source = image_attachment(texts, "source", None)
        mask = image_attachment(texts, "mask", "L") >= 128
        if mask.shape != source.shape[:2] or mask.ndim != 2:
            raise InputError("its mask and source are of different sizes")
    parent, at_step = None, 0
    fork = metadata.get("fork")
    if fork is not None:
        if not isinstance(fork, Mapping) or not isinstance(fork.get("parent"), Mapping):
            raise InputError("its fork is not an object with a parent")
        at_step = fork.get("at_step")
        if isinstance(at_step, bool) or not isinstance(at_step, int) or not at_step >= 0:
            raise InputError(f"its fork's step is not a whole number of 0 or more: {at_step!r}")
        if depth >= MAX_LINEAGE:
            raise InputError(f"it is a fork of more than {MAX_LINEAGE} forks")
        if fork["parent"].get("inpaint", False) != inpaint:
            raise InputError("its fork and its parent differ in being an inpainting")
        parent = _record_from(fork["parent"], texts, depth + 1)
    restore = _restore_from(metadata.get("restore"), texts, inpaint)
    windows = _windows_from(metadata.get("windows", []), restore)
    return RunRecord(SampleRequest.from_record(request), source=source, mask=mask, parent=parent,
                     at_step=at_step, cell=_cell_from(metadata.get("cell")), restore=restore,
                     windows=windows, **fields)  # fmt: skip


def _windows_from(data: object, restore: Restore | None) -> tuple[tuple[int, int], ...]:
    """MultiDiffusion's windows of an enlargement past the model's size: (top, left) pairs
    on its canvas."""
    if not isinstance(data, list) or len(data) > 10_000:
        raise InputError("its windows are not a list of at most 10,000")
    if data and (restore is None or restore.observation is None):
        raise InputError("it has windows but no restoration to make with them")
    for pair in data:
        if not (isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_RESOLUTION
            for v in pair
        )):  # fmt: skip
            raise InputError("a window is not a pair of whole numbers on the canvas")
    return tuple((top, left) for top, left in data)


def _restore_from(data: object, texts: Mapping[str, str], inpaint: bool) -> Restore | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or data.get("operator") not in (
        "mask",
        "average",
        "luminance",
    ):
        raise InputError("its restoration is not one of mask, average or luminance")
    factor = data.get("factor", 1)
    if isinstance(factor, bool) or factor not in (1, 2, 4):
        raise InputError(f"its restoration's factor is not 1, 2 or 4: {factor!r}")
    operator = data["operator"]
    if operator == "mask":
        if not inpaint:
            raise InputError("it is a DDNM inpainting without its image and mask")
        return Restore("mask")
    mode = "L" if operator == "luminance" else None
    observation = image_attachment(texts, "observation", mode)
    if mode == "L":
        observation = observation[..., None]
    return Restore(operator, factor, observation)


def _cell_from(data: object) -> Cell | None:
    if data is None:
        return None
    texts = {"workflow": 64, "row_label": 200, "column_label": 200}
    if not isinstance(data, Mapping) or not all(
        isinstance(data.get(k, ""), str) and len(data.get(k, "")) <= n for k, n in texts.items()
    ):
        raise InputError("its cell is not an object of short texts and whole numbers")
    place = [data.get(k) for k in ("row", "column")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10_000 for v in place):
        raise InputError("its cell's row and column are not whole numbers under 10,000")
    return Cell(str(data.get("workflow", "")), place[0], place[1], str(data.get("row_label", "")),
                str(data.get("column_label", "")))  # fmt: skip


def image_attachment(texts: Mapping[str, str], name: str, mode: str | None) -> np.ndarray:
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


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    to_pil(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the folders results are written to -------------------------------------------------------


def next_run_number(folder: Path) -> int:
    """1 more than the highest run number of the files in `folder` (1 for a new folder, or one
    that cannot be read: writing there is refused with the reason by core.files)."""
    try:
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        return 1
    numbers = [int(m.group(1)) for name in names if (m := _RUN_NUMBER.match(name))]
    return max(numbers, default=0) + 1


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
