"""The evaluation's samples: `count` class-conditional images of one setting, made in chunks,
each a batch of its own seeds, and scored.

Chunk k of a setting is the same batch however the work is spread: under `accelerate launch`
process p makes the chunks k with k mod P = p (core.shards) and every process gathers them in
order, so the images, and the scores, are one process's bit for bit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from diffusion_studio.core.classifier import Classifier
from diffusion_studio.core.errors import InputError
from diffusion_studio.core.images import to_uint8
from diffusion_studio.core.job import Job
from diffusion_studio.core.model import DiffusionModel
from diffusion_studio.core.request import SampleRequest
from diffusion_studio.core.run import run
from diffusion_studio.core.shards import ONE, Shard
from diffusion_studio.core.train.evaluate import (
    EvalClassifier,
    FeatureStats,
    Score,
    class_allocation,
    resized,
    score,
    to_tensor_batch,
)


def sample_chunks(
    request: SampleRequest, count: int, batch_size: int, classes: int, class_counts: Sequence[int]
) -> list[SampleRequest]:
    """The batches of `count` samples, in order: the classes in the shares of `class_counts`
    (an even spread without them), each class's in batches of at most `batch_size`, drawn from
    seed + 100000 * class + the index of its first image."""
    chunks = []
    for label, wanted in enumerate(class_allocation(count, classes, class_counts)):
        for start in range(0, wanted, batch_size):
            chunks.append(replace(request, class_label=label,
                                  batch_size=min(batch_size, wanted - start),
                                  seed=request.seed + 100_000 * label + start))  # fmt: skip
    return chunks


def generate_images(
    model: DiffusionModel,
    request: SampleRequest,
    count: int,
    batch_size: int = 128,
    guide: Classifier | None = None,
    class_counts: Sequence[int] = (),
    size: int | None = None,
    shard: Shard = ONE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` class-conditional samples, as a person sees them (quantised to uint8): images
    (N, C, H, W) in [-1, 1] and their requested labels (N,), in the order of sample_chunks.
    With a guidance classifier (and the request's classifier scale) each is guided towards its
    class. With `size`, samples of another size are resized to size x size (see resized).
    Spread over processes, each makes its chunks and all of them are gathered."""
    classes = len(model.info.class_names)
    if not classes:
        raise InputError(f"{model.info.name} is not class-conditional: class accuracy needs one")
    chunks = sample_chunks(request, count, batch_size, classes, class_counts)
    made: list[tuple[int, np.ndarray]] = []
    for k, chunk in shard.deal(chunks):
        job = Job.prepare(chunk, model.info, classifier=guide and guide.info)
        last = deque(run(model, job, guide), maxlen=1)[0]
        samples = to_uint8(last.x_t)
        made.append((k, resized(samples, size) if size is not None else samples))
    everything = sorted(shard.gather(made), key=lambda pair: pair[0])
    images = torch.cat([to_tensor_batch(samples) for _, samples in everything])
    labels = [chunks[k].class_label for k, samples in everything for _ in samples]
    return images, torch.tensor(labels)


def evaluate_setting(
    model: DiffusionModel,
    request: SampleRequest,
    classifier: EvalClassifier,
    real: FeatureStats,
    count: int,
    batch_size: int = 128,
    guide: Classifier | None = None,
    class_counts: Sequence[int] = (),
    size: int | None = None,
    shard: Shard = ONE,
) -> Score:
    """Sample `count` images with one setting, in the classes' shares of `class_counts`, and
    score them, at `size` x `size` (the evaluation's classifier is never the guide: a guide
    would grade its own push)."""
    images, labels = generate_images(
        model, request, count, batch_size, guide, class_counts, size, shard
    )
    return score(classifier, images, labels, real)
