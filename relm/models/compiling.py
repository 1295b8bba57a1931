"""Regional compilation: torch.compile of each LLM decoder layer, used in training only.

The layers share one compiled graph (their code is the same; their weights are inputs, not constants), so a
32-layer LLM compiles one layer's forward and backward, not 32. Evaluation and decoding run the layers eagerly:
a decoding step's shapes change every token, which would recompile each time.
"""

from __future__ import annotations

from typing import Any

import torch

HFModel = Any


class CompiledLayers:
    def __init__(self, llm: HFModel):
        base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
        self.layers = list(base.get_decoder().layers)
        # A new module compiles afresh: graphs of an earlier run's module (a sweep trains many in one process)
        # would otherwise count toward dynamo's recompile limit, past which layers silently run eagerly.
        torch._dynamo.reset()
        # torch's automatic dynamic shapes: the first batch length compiles a static graph, the second a symbolic
        # one that serves every later length and batch size (static graphs, one per padded length, ran into the
        # recompile limit of 8 and then ran eagerly without a word).
        for layer in self.layers:
            layer.compile()
        self.compiled = [layer._compiled_call_impl for layer in self.layers]

    def use(self, on: bool) -> None:
        """Compiled calls (training) or eager ones (evaluation, decoding)."""
        for layer, compiled in zip(self.layers, self.compiled):
            layer._compiled_call_impl = compiled if on else None


def compile_available(device: torch.device) -> str | None:
    """Why torch.compile cannot run here, or None: Inductor needs a C++ compiler on the CPU, Triton on CUDA."""
    import shutil

    if device.type == "cpu" and not (shutil.which("g++") or shutil.which("clang++")):
        return "no C++ compiler (g++ or clang++) for torch.compile on the CPU"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed (torch.compile on CUDA)"
    return None
