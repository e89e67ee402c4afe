"""Work spread over processes started by `accelerate launch` (or torchrun): which share of a
run this process makes, and the barrier and gathering the shares need.

`sample -n N` gives each process a contiguous span of the batch's seeds, run as its own batch
and written under the names one process would give them; `eval` deals each process whole
chunks of its images (chunk k to process k mod P), so every chunk is the batch one process
would run and the union is the same images bit for bit. A plain command is one process, the
whole run: nothing of accelerate is imported then.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from diffusion_studio.core.errors import InputError

T = TypeVar("T")


def launched_processes() -> int:
    """How many processes a launcher started for this command (its WORLD_SIZE), 1 without one."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Shard:
    """This process's place among `count` (index 0, the main one, prints the summaries), and
    under a launcher the device it was given (cuda:LOCAL_RANK on a machine of GPUs)."""

    index: int = 0
    count: int = 1
    device: str | None = None
    state: Any = field(default=None, repr=False, compare=False)  # accelerate's PartialState

    @property
    def main(self) -> bool:
        return self.index == 0

    def span(self, total: int) -> range:
        """The indices of `total` images this process makes: a contiguous run, the spans of
        the processes as even as can be and together 0..total-1 in order."""
        return range(total * self.index // self.count, total * (self.index + 1) // self.count)

    def deal(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """This process's items of `items` with their places: item k goes to process k mod
        count (whole items, so each is made as one process would make it)."""
        return [(k, item) for k, item in enumerate(items) if k % self.count == self.index]

    def wait(self) -> None:
        """Return when every process has come here."""
        if self.state is not None:
            self.state.wait_for_everyone()

    def gather(self, values: list[T]) -> list[T]:
        """Every process's `values`, one list in process order, on every process."""
        if self.state is None:
            return values
        from accelerate.utils import gather_object

        return gather_object(values)


ONE = Shard()  # the whole run, in this process


def this_shard(device: str = "auto") -> Shard:
    """The shard of this process: the whole run without a launcher; under one, accelerate's
    process group (on the CPU, gloo, where `device` is cpu or no GPU is seen)."""
    if launched_processes() <= 1:
        return ONE
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or not torch.cuda.is_available()
    try:
        state = PartialState(cpu=cpu)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"the processes of the launcher could not meet: {exc}") from exc
    given = state.device
    placed = None if given.type == "cpu" else str(given)
    return Shard(state.process_index, state.num_processes, placed, state)
