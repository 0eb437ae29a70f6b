"""In-memory sets, samplers and loaders that survive a restart: the data order is a function of
(seed, epoch) alone and the train loader records its position (docs/design.md#exact-resume)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class TensorSet(Dataset):
    """An in-memory tensor; ``__getitems__`` fetches a whole batch with one index op."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]

    def __getitems__(self, idx: list[int]) -> torch.Tensor:
        return self.x[idx]


def take(dataset: Dataset, idx: list[int]) -> torch.Tensor:
    """The samples at ``idx``, stacked (one index op for in-memory sets)."""
    if isinstance(dataset, TensorSet):
        return dataset.x[idx]
    return torch.stack([dataset[i] for i in idx])


def first_n(dataset: Dataset, n: int) -> torch.Tensor:
    """The first n samples of a split (all of it if shorter), stacked: a fixed reference set."""
    return take(dataset, list(range(min(n, len(dataset)))))  # type: ignore[arg-type]


def batches(dataset: Dataset, n: int, size: int = 500) -> Iterator[torch.Tensor]:
    """``first_n(dataset, n)``, ``size`` samples at a time: memory bounded by one batch."""
    n = min(n, len(dataset))  # type: ignore[arg-type]
    for start in range(0, n, size):
        yield take(dataset, list(range(start, min(start + size, n))))


def collate(batch: Any) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else torch.stack(batch)


class EpochSampler(DistributedSampler):
    """Shuffles by (seed, epoch) alone and shards across ranks, so the data order survives a
    restart; ``start`` skips the part of the epoch a resumed run has already seen, and
    ``offset`` is how far Lightning's epoch count runs ahead of the data's (see
    ``ResumableLoader``)."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas, rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0
        self.offset = 0

    def data_epoch(self) -> int:
        return self.epoch - self.offset

    def __iter__(self):
        lightning_epoch, self.epoch = self.epoch, self.data_epoch()  # that epoch's order
        try:
            order = list(super().__iter__())
        finally:
            self.epoch = lightning_epoch
        return iter(order[self.start :])


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning checkpoints: it records the data's epoch and how many batches
    of it were handed out and, after ``load_state_dict``, resumes right after them
    (docs/design.md#exact-resume).

    A checkpoint written when ``max_steps`` ends a run mid-epoch records that epoch as finished,
    so Lightning starts the next one when the run is extended. The loader continues the epoch
    the data was in all the same, and counts its epochs from there on."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._seen = 0
        self._resume: tuple[int | None, int] | None = None

    def __iter__(self):  # a generator: nothing is drawn before Lightning calls set_epoch
        skip = 0
        if self._resume is not None:
            (epoch, seen), self._resume = self._resume, None
            finished = seen >= len(self)
            skip = 0 if finished else seen
            if epoch is not None:  # a checkpoint that records the data's epoch
                self.sampler.offset = self.sampler.epoch - (epoch + finished)
        self.sampler.start = skip * self.batch_size
        self._seen = skip
        for batch in super().__iter__():
            self._seen += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_seen": self._seen, "data_epoch": self.sampler.data_epoch()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (state.get("data_epoch"), state["batches_seen"])
