"""The window's work in one object: the model, the source image, the inpaint mask and the
request, each with a change signal. Widgets observe it, autosave serialises it, file handling
and menus change it; Run turns it into a core Job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from diffusion_studio.core.job import Job
from diffusion_studio.core.request import SampleRequest

if TYPE_CHECKING:
    from diffusion_studio.core.classifier import Classifier
    from diffusion_studio.core.model import DiffusionModel


class StudioState(QObject):
    """model: the loaded DiffusionModel or None; source: (H, W, C) uint8 at the model's size or
    None; mask: (H, W) bool, True = generate; request: the sampler panel's SampleRequest;
    caption: what the source is, for a person."""

    model_changed = Signal(object)
    classifier_changed = Signal(object)  # the guiding Classifier, or None
    source_changed = Signal()
    mask_changed = Signal()
    request_changed = Signal()  # set from outside the panel (a PNG's record, a restore)
    caption_changed = Signal(str)

    def __init__(self, size: tuple[int, int] = (32, 32), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model: DiffusionModel | None = None
        self._classifier: Classifier | None = None
        self._size = size
        self._source: np.ndarray | None = None
        self._mask = np.zeros(size, dtype=bool)
        self._mask_by_hand = False
        self._request = SampleRequest()
        self._caption = ""

    # --- reading ------------------------------------------------------------------------

    @property
    def model(self) -> DiffusionModel | None:
        return self._model

    @property
    def classifier(self) -> Classifier | None:
        """The noise-aware classifier of classifier guidance, when one fits the model."""
        return self._classifier

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the model's images: the size of the source and the mask."""
        return self._size

    @property
    def source(self) -> np.ndarray | None:
        return self._source

    @property
    def mask(self) -> np.ndarray:
        """The inpaint mask (a copy)."""
        return self._mask.copy()

    @property
    def has_mask(self) -> bool:
        return bool(self._mask.any())

    @property
    def mask_by_hand(self) -> bool:
        """Whether the mask holds brush strokes (work a person made, asked about before it
        is let go), not only a preset, a fill or an imported file."""
        return self._mask_by_hand and self.has_mask

    @property
    def inpainting(self) -> bool:
        """An image and a painted mask: Run is RePaint."""
        return self._source is not None and self.has_mask

    @property
    def request(self) -> SampleRequest:
        return self._request

    @property
    def caption(self) -> str:
        return self._caption

    def job(self, request: SampleRequest | None = None) -> Job | None:
        """The Job of the work: the request, and the image and mask when one is painted."""
        if self._model is None:
            return None
        image, mask = (self._source, self._mask) if self.inpainting else (None, None)
        guide = self._classifier.info if self._classifier else None
        return Job.prepare(
            request or self._request, self._model.info, image=image, mask=mask, classifier=guide
        )

    # --- changing -----------------------------------------------------------------------

    def set_model(self, model: DiffusionModel) -> None:
        """A model; one of another size starts the source and the mask over."""
        self._model = model
        if model.info.resolution != self._size:
            self._size = model.info.resolution
            self._source = None
            self._mask = np.zeros(self._size, dtype=bool)
            self.source_changed.emit()
            self.mask_changed.emit()
        self.model_changed.emit(model)

    def set_classifier(self, classifier: Classifier | None) -> None:
        """A classifier that fits the model (Classifier.mismatch says so), or None."""
        self._classifier = classifier
        self.classifier_changed.emit(classifier)

    def set_source(self, image: np.ndarray | None, caption: str = "") -> None:
        """(H, W, C) uint8 at the model's size, or None."""
        if image is not None and image.shape[:2] != self._size:
            raise ValueError(f"the source is {image.shape[:2]}, the work is {self._size}")
        self._source = None if image is None else np.ascontiguousarray(image)
        self.source_changed.emit()
        self.set_caption(caption)

    def set_mask(self, mask: np.ndarray, by_hand: bool | None = None) -> None:
        """(H, W), nonzero = generate; `by_hand` says whether it holds brush strokes now
        (None: as before, for an undo or an inversion)."""
        mask = np.asarray(mask) != 0
        if mask.shape != self._size:
            raise ValueError(f"the mask is {mask.shape}, the work is {self._size}")
        self._mask = mask.copy()
        if by_hand is not None:
            self._mask_by_hand = by_hand
        self.mask_changed.emit()

    def set_request(self, request: SampleRequest, *, from_panel: bool = False) -> None:
        """The panel reports its fields with from_panel; anyone else's request is shown."""
        if request == self._request:
            return
        self._request = request
        if not from_panel:
            self.request_changed.emit()

    def set_caption(self, caption: str) -> None:
        if caption != self._caption:
            self._caption = caption
            self.caption_changed.emit(caption)
