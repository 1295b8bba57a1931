"""The benchmark pipeline: a sweep's stages, one concern per file.

stages (names, timers, cache folders) -> dataset (manifest, features, stage 0) -> teacher ->
training (train + answer, one cache entry per run) -> scoring -> comparisons -> publish
(results.json, report, plots) -> tracking (W&B); `sweep` drives it, `evaluate` reuses it on
another corpus, `regression` gates and compares finished sweeps.
"""
