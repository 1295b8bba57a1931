"""Corpora, manifests and audio. Knows nothing of models or scoring."""
