"""In-memory sets, samplers and loaders that survive a restart: the data order is a function of
(seed, epoch) alone and the train loader records its position (docs/design.md#exact-resume)."""

from __future__ import annotations

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


def collate(batch: Any) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else torch.stack(batch)


class EpochSampler(DistributedSampler):
    """Shuffles by (seed, epoch) alone and shards across ranks, so the data order survives a
    restart; ``start`` skips the part of the epoch a resumed run has already seen."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas, rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning checkpoints: it records how many batches of the current epoch
    it handed out and, after ``load_state_dict``, resumes right after them (docs/design.md#exact-resume)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._seen = 0
        self._resume_at = 0

    def __iter__(self):  # a generator: nothing is drawn before Lightning calls set_epoch
        skip, self._resume_at = self._resume_at, 0
        self.sampler.start = skip * self.batch_size
        self._seen = skip
        for batch in super().__iter__():
            self._seen += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_seen": self._seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        seen = state["batches_seen"]
        self._resume_at = seen if seen < len(self) else 0  # a finished epoch restarts at 0
