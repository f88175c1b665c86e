"""A test-only block family that reports what reached it: its forward raises unless the input has the dtype and
batch size ``config`` names, and its weight the same dtype. Module-level so that the worker can unpickle it."""

from __future__ import annotations

from typing import Any

import torch

from profiler.families import BlockFamily
from profiler.space import Categorical, Integer, Space

__all__ = ["EXPECT"]


class _Expect(torch.nn.Module):
    def __init__(self, dtype: str, batch: int) -> None:
        super().__init__()
        self.dtype, self.batch = getattr(torch, dtype), batch
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype or self.scale.dtype != self.dtype or x.shape[0] != self.batch:
            raise RuntimeError(f"got input {x.dtype} batch {x.shape[0]}, weight {self.scale.dtype}")
        return x * self.scale


class Expect(BlockFamily):
    """``dtype`` and ``batch``: what the worker must hand the block."""

    name = "test-expect"
    space = Space([Categorical("dtype", ["float32", "bfloat16"]), Integer("batch", 1, 8)])

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, 4)

    def build(self, config: Any) -> torch.nn.Module:
        cfg = self.validate(config)
        return _Expect(cfg["dtype"], cfg["batch"])


EXPECT = Expect()
