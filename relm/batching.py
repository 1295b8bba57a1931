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
        self.batch_size, self.window, self.seed = batch_size, window, seed
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        for batch in length_buckets(self.lengths, self.batch_size, self.rng, self.window):
            yield batch.tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def padding_shares(self) -> dict[str, float]:
        """Padding of the first epoch's batches (drawn from a fresh generator of the same seed, so this sampler's
        own stays where it is), and of plain shuffled batches of the same items, for comparison."""
        first = length_buckets(self.lengths, self.batch_size, np.random.default_rng(self.seed), self.window)
        order = np.random.default_rng(self.seed).permutation(len(self.lengths))
        shuffled = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return {"length_buckets": padding_share(self.lengths, first), "shuffled": padding_share(self.lengths, shuffled)}


def padding_share(lengths, batches: list) -> float:
    """The share of a padded batch's positions that are padding, over `batches` (arrays of indices)."""
    lengths = np.asarray(lengths)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return round(1 - int(lengths.sum()) / padded, 4) if padded else 0.0
