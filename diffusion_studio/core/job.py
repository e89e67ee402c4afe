"""A job: everything one run needs but the network, as data, made by `Job.prepare`, the one
place that loads and fits the source image and the mask, for the window and the command line
alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from diffusion_studio.core.canvas import fit_picture, tile_windows
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import fit_to_size, load_image, to_channels, to_pil
from diffusion_studio.core.info import ClassifierInfo, ModelInfo
from diffusion_studio.core.limits import MAX_NETWORK_CALLS, MAX_RESOLUTION
from diffusion_studio.core.masks import (
    PRESETS,
    fit_mask,
    invert_mask,
    load_mask,
    parse_preset,
    preset_mask,
)
from diffusion_studio.core.request import SampleRequest


@dataclass(frozen=True, eq=False)
class Fork:
    """A run continued from a step of another: its parent's job and the network calls of the
    parent done before it (0: from x_T, with other settings)."""

    parent: Job
    at_step: int


@dataclass(frozen=True)
class Cell:
    """Where a job stands in a workflow's table (a compare, a class grid): its row and column,
    by index and by label."""

    workflow: str
    row: int
    column: int
    row_label: str = ""
    column_label: str = ""


Operator = Literal["mask", "average", "luminance"]


@dataclass(frozen=True, eq=False)
class Restore:
    """A job restored by DDNM's null-space projection (core.restore): the degradation
    ("mask": the job's source and mask are the observation; "average": factor x factor
    blocks; "luminance": grey) and, for the last two, the observation (H', W', C') uint8."""

    operator: Operator
    factor: int = 1
    observation: np.ndarray | None = None

    def check(self, model: ModelInfo, tiled: bool = False) -> None:
        """InputError unless the observation is what this operator makes of `model`'s images:
        1/factor of its size in its channels (average), its size in one channel (luminance);
        `tiled` (MultiDiffusion's windows), of any image at least the model's size."""
        height, width = model.resolution
        if tiled and self.observation is not None:
            h, w, c = self.observation.shape
            size = (h * self.factor, w * self.factor)
            if c != (1 if self.operator == "luminance" else model.in_channels) or not (
                height <= size[0] <= MAX_RESOLUTION and width <= size[1] <= MAX_RESOLUTION
            ):
                raise InputError(f"the {self.operator} restoration's observation is "
                                 f"{self.observation.shape}: {model.name} cannot make "
                                 f"{size[1]}x{size[0]} of it")  # fmt: skip
            return
        wanted = {
            "average": (height // self.factor, width // self.factor, model.in_channels),
            "luminance": (height, width, 1),
        }.get(self.operator)
        if wanted is None:
            return
        got = None if self.observation is None else self.observation.shape
        if got != wanted:
            raise InputError(f"the {self.operator} restoration's observation is {got}, "
                             f"{model.name} needs {wanted}")  # fmt: skip


@dataclass(frozen=True, eq=False)
class Job:
    """Everything one run needs but the network: the request (spacing, variance and precision
    resolved to the model's when it left them open), the model's identity, and for
    inpainting the source (H, W, C) uint8 and the inpaint_mask (H, W) bool, True = generate,
    both at the model's size (with `windows`, a larger canvas's: MultiDiffusion). `notes`
    says what was done to fit the inputs, for a person. A fork's request is the
    continuation's (its num_inference_steps: the calls after the fork); a cell says where
    the job stands in a workflow's table."""

    request: SampleRequest
    model: ModelInfo
    source: np.ndarray | None = None
    mask: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    classifier: ClassifierInfo | None = None  # the guiding classifier, when the scale is > 0
    fork: Fork | None = None
    cell: Cell | None = None
    restore: Restore | None = None
    windows: tuple[tuple[int, int], ...] = ()  # MultiDiffusion: (top, left) on the canvas

    @property
    def shape(self) -> tuple[int, int]:
        """The (height, width) the run makes: the model's, or a MultiDiffusion canvas's (its
        source's, denoised by windows of the model's size)."""
        if self.windows and self.source is not None:
            return self.source.shape[0], self.source.shape[1]
        if self.windows and self.restore is not None and self.restore.observation is not None:
            height, width = self.restore.observation.shape[:2]
            return height * self.restore.factor, width * self.restore.factor
        return self.model.resolution

    @property
    def inpaint(self) -> bool:
        """RePaint's merge of the known region after every step (not DDNM's projection)."""
        return self.source is not None and self.restore is None

    @property
    def jumps(self) -> bool:
        """Whether the run's moves have RePaint's jumps back (its resampling, DDNM+'s time
        travel): an inpainting or a restoration, with jump_n_sample above 1."""
        return self.source is not None or self.restore is not None

    def for_image(self, index: int) -> Job:
        """The job that makes image `index` of this batch alone (and, for a fork, from the same
        image of its parent)."""
        fork = self.fork and Fork(self.fork.parent.for_image(index), self.fork.at_step)
        return dataclasses.replace(self, request=self.request.for_image(index), fork=fork)

    @classmethod
    def upscale(
        cls,
        request: SampleRequest,
        model: ModelInfo,
        image: str | Path | np.ndarray,
        factor: int,
        method: Literal["grid", "ddnm"] = "ddnm",
        tiled: bool = False,
    ) -> Job:
        """Super-resolution of `image` by `factor` (2 or 4), fitted first to 1/factor of the
        model's size: "grid" puts its pixels on the stride-`factor` grid and lets RePaint
        fill the rest (the course's every-second-pixel mask); "ddnm" keeps its block averages
        exactly (DDNM, A = factor x factor averaging). `tiled` (ddnm): the picture kept at its
        size (made at least 1/factor of the model's) and enlarged past the model's size, the
        canvas denoised by windows of the model's size (MultiDiffusion)."""
        if factor not in (2, 4):
            raise InputError(f"the factor is 2 or 4, got {factor}")
        if tiled:
            return cls._tiled_upscale(request, model, image, factor, method)
        height, width = model.resolution
        if height % factor or width % factor:
            raise InputError(f"{model.name} makes {width}x{height}: no whole 1/{factor} of it")
        small, _, note = fit_source(image, dataclasses.replace(
            model, resolution=(height // factor, width // factor)))  # fmt: skip
        request = resolved(request, model)
        request.check()
        notes = (note,) if note else ()
        if method == "ddnm":
            return cls(request, model, notes=notes, restore=Restore("average", factor, small))
        if method != "grid":
            raise InputError(f"the method is grid or ddnm, got {method!r}")
        source = small.repeat(factor, axis=0).repeat(factor, axis=1)
        rows, cols = np.indices((height, width))
        known = (rows % factor == 0) & (cols % factor == 0)
        return cls(request, model, source, ~known, notes)

    @classmethod
    def _tiled_upscale(
        cls, request: SampleRequest, model: ModelInfo, image: str | Path | np.ndarray, factor: int,
        method: str,
    ) -> Job:  # fmt: skip
        if method != "ddnm":
            raise InputError("enlarging past the model's size keeps block averages: ddnm only")
        height, width = model.resolution
        small = dataclasses.replace(model, resolution=(-(-height // factor), -(-width // factor)))
        picture, note = fit_picture(image, small, shrink=False)
        restore = Restore("average", factor, picture)
        restore.check(model, tiled=True)
        request = resolved(request, model)
        request.check()
        size = (picture.shape[0] * factor, picture.shape[1] * factor)
        windows = tuple(tile_windows(size, model.resolution, 2))
        return cls(request, model, notes=(note,) if note else (), restore=restore,
                   windows=windows)  # fmt: skip

    @classmethod
    def colorize(
        cls, request: SampleRequest, model: ModelInfo, image: str | Path | np.ndarray
    ) -> Job:
        """Colorization of a grey picture (any picture: its luminance is taken), fitted to the
        model's size; the result's luminance is the picture's (DDNM, A = luminance)."""
        if model.in_channels != 3:
            raise InputError(f"colorizing needs an RGB model; {model.name} has "
                             f"{model.in_channels} channel(s)")  # fmt: skip
        picture, _, note = fit_source(image, model)
        grey = np.asarray(to_pil(picture).convert("L"))[..., None]
        request = resolved(request, model)
        request.check()
        return cls(request, model, notes=(note,) if note else (),
                   restore=Restore("luminance", 1, grey))  # fmt: skip

    def forked(
        self, request: SampleRequest, at_step: int, classifier: ClassifierInfo | None = None
    ) -> Job:
        """A fork of this job at `at_step` (network calls done) with `request`'s settings
        (spacing, variance and precision resolved as prepare does), its inputs the same;
        guided by `classifier` (default this job's) when its classifier scale asks for one."""
        request = resolved(request, self.model)
        request.check()
        if not 0 <= at_step <= MAX_NETWORK_CALLS:
            raise InputError(f"a fork's step is from 0 on, got {at_step}")
        guide = (classifier or self.classifier) if request.classifier_scale else None
        if request.classifier_scale and guide is None:
            raise InputError("a classifier scale needs a classifier (--classifier FOLDER)")
        return Job(request, self.model, self.source, self.mask, (), guide,
                   Fork(self, at_step), restore=self.restore)  # fmt: skip

    @classmethod
    def prepare(
        cls,
        request: SampleRequest,
        model: ModelInfo,
        *,
        image: str | Path | np.ndarray | None = None,
        mask: str | Path | np.ndarray | None = None,
        mask_preset: str | None = None,
        mask_seed: int | None = None,
        invert_mask_file: bool = False,
        classifier: ClassifierInfo | None = None,
        consistency: Literal["repaint", "ddnm"] = "repaint",
    ) -> Job:
        """The job of `request` for `model`: an image (a file, or an (H, W, C) uint8 array) is
        centre-cropped and resized to the model's size and given its channels; the mask (a
        file, white = generate, or with invert_mask_file white = keep; an (H, W) bool array;
        or a preset drawn with mask_seed, default the request's seed) fitted the same way.
        An image needs a mask and a mask an image; the known region is kept by RePaint's merge,
        or with `consistency` "ddnm" by DDNM's projection of x_0. A classifier is kept only when
        the request's classifier scale uses it. Raises InputError naming the file."""
        request = resolved(request, model)
        request.check()
        if request.classifier_scale and classifier is None:
            raise InputError("a classifier scale needs a classifier (--classifier FOLDER)")
        guide = classifier if request.classifier_scale else None
        has_mask = mask is not None or mask_preset is not None
        if (image is None) != (not has_mask):
            raise InputError("inpainting needs both a source image and a mask")
        if image is None:
            return cls(request, model, classifier=guide)
        source, original, note = fit_source(image, model)
        size = model.resolution
        if mask_seed is not None and mask_preset is None:
            raise InputError("a mask seed draws a random preset; a mask file has none")
        if mask_preset is not None:
            preset, side = parse_preset(mask_preset)
            if mask_seed is not None and not PRESETS[preset].random:
                raise InputError(f"a mask seed draws a random preset; {mask_preset} is not one")
            if invert_mask_file:
                raise InputError("inverting is for a mask file (white = keep), not a preset")
            seed = request.seed if mask_seed is None else mask_seed
            inpaint_mask = preset_mask(preset, size, seed=seed, side=side)
        else:
            inpaint_mask = fit_inpaint_mask(mask, size, original, invert_mask_file)
        if consistency not in ("repaint", "ddnm"):
            raise InputError(f"the consistency is repaint or ddnm, got {consistency!r}")
        restore = Restore("mask") if consistency == "ddnm" else None
        return cls(request, model, source, inpaint_mask, (note,) if note else (), guide,
                   restore=restore)  # fmt: skip


def resolved(request: SampleRequest, model: ModelInfo) -> SampleRequest:
    """The request with the spacing, variance and precision it left open set to the model's
    (the precision: its device's)."""
    return dataclasses.replace(
        request,
        timestep_spacing=request.timestep_spacing or model.timestep_spacing,
        variance_type=request.variance_type or model.variance_type,
        precision=request.precision or model.precision,  # type: ignore[arg-type]
    )


def fit_source(
    image: str | Path | np.ndarray, model: ModelInfo
) -> tuple[np.ndarray, tuple[int, int], str | None]:
    """A source image (a file, or an (H, W, C) uint8 array) at the model's size and channels:
    (the image, its original (height, width), a note for a person when it was cropped or
    resized). The one place images are fitted, for the command line and the window alike."""
    if isinstance(image, np.ndarray):
        original = image.shape[:2]
        picture = to_pil(to_channels(image, model.in_channels))
    else:
        picture = load_image(image, channels=model.in_channels)
        original = (picture.height, picture.width)
    fitted, note = fit_to_size(picture, model.resolution)
    return np.asarray(fitted).reshape(*model.resolution, model.in_channels), original, note


def fit_inpaint_mask(
    mask: str | Path | np.ndarray,
    size: tuple[int, int],
    original: tuple[int, int],
    invert: bool = False,
) -> np.ndarray:
    """A mask (a file, white = generate, or with `invert` white = keep; or an (H, W) array,
    nonzero = generate) fitted to `size` as its image of `original` size was."""
    if isinstance(mask, np.ndarray):
        loaded, what = (invert_mask(mask) if invert else mask != 0), "the mask"
    else:
        loaded, what = load_mask(mask, invert=invert), f"the mask {mask}"
    if loaded.shape not in (original, size):
        raise InputError(
            f"{what} is {loaded.shape[1]}x{loaded.shape[0]}, but the image is "
            f"{original[1]}x{original[0]}: they must be the same size"
        )
    return fit_mask(loaded, size)
