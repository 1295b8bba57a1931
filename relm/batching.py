"""Batches of similar length, still in a random order: less padding for the MiniLM scorer and LLM training."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 8) -> list:
    """Shuffled batches of similar length: shuffle, sort each run of `window` batches' worth of rows by
    length, cut it into batches, shuffle the batches. Less padding, and still a random order per epoch."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * window):
        chunk = order[start : start + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class LengthBucketSampler(Sampler[list[int]]):
    """A DataLoader batch sampler: new `length_buckets` every epoch, from one seeded generator."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, window: int):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.window = batch_size, window
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        for batch in length_buckets(self.lengths, self.batch_size, self.rng, self.window):
            yield batch.tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def padding_share(lengths: list[int], batches: list) -> float:
    """The share of a padded batch's positions that are padding, over `batches` (lists of indices)."""
    lengths_arr = np.asarray(lengths)
    padded = sum(int(lengths_arr[b].max()) * len(b) for b in batches)
    return round(1 - int(lengths_arr.sum()) / padded, 4) if padded else 0.0
