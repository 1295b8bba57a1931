"""relm: a benchmark suite for empathetic speech-LLMs (RE-LLM and its baselines)."""

__version__ = "0.1.0"
