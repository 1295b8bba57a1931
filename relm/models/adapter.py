"""BLSP's subsampling modality adapter, as in RE-LLM's `w2v2cat_adapter`.

n x [Conv1d(kernel 5, stride 2, padding 2) -> GLU] (8x downsampling for n = 3), then a
residual bottleneck x + fc2(GELU(fc1(x))) without biases, then LayerNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from relm.config import AdapterCfg
from relm.errors import RelmError


class SubsamplingAdapter(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, cfg: AdapterCfg = AdapterCfg()):
        super().__init__()
        self.kernel, self.stride, self.pad = cfg.kernel, cfg.stride, cfg.kernel // 2
        dims = [in_dim] * cfg.n_conv + [out_dim]
        self.convs = nn.ModuleList(
            nn.Conv1d(dims[i], 2 * dims[i + 1], cfg.kernel, stride=cfg.stride, padding=self.pad)
            for i in range(cfg.n_conv)
        )
        self.fc1 = nn.Linear(out_dim, cfg.inner_dim, bias=False)
        self.fc2 = nn.Linear(cfg.inner_dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.xavier_uniform_(self.fc2.weight)
        self.n_conv = cfg.n_conv

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in range(self.n_conv):
            lengths = torch.div(lengths + 2 * self.pad - self.kernel, self.stride, rounding_mode="floor") + 1
        return lengths

    @property
    def min_frames(self) -> int:
        """Shortest input (in frames) for one full output step: stride ** n_conv (160 ms for 3 convs)."""
        return self.stride**self.n_conv

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, in_dim) padded frames -> (B, T', out_dim), lengths T' (on the device `lengths` is on: host
        lengths are checked without waiting for the device)."""
        if int(lengths.min()) < self.min_frames:
            raise RelmError(
                f"audio too short for the adapter: {int(lengths.min())} frames "
                f"(< {self.min_frames}, i.e. {self.min_frames * 20} ms)"
            )
        on_device = lengths.to(x.device, non_blocking=True)
        mask = (torch.arange(x.shape[1], device=x.device)[None] < on_device[:, None]).unsqueeze(-1)
        h = (x * mask).transpose(1, 2)
        for conv in self.convs:
            h = nn.functional.glu(conv(h), dim=1)
        h = h.transpose(1, 2)
        h = h + self.fc2(nn.functional.gelu(self.fc1(h)))
        return self.norm(h), self.out_lengths(lengths)
