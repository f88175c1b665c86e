"""Families whose configurations are specs of a whole thing to measure (a glue layer, a published model), not
points of a parameter space: keyed by a hash of the checked spec, read at the spec's own ``input`` shape.

Contract: a subclass sets ``name`` and defines ``validate`` (the canonical spec, holding ``input``: the NCHW
shape it reads, batch first), ``build`` and ``__reduce__`` (to the registered instance); the key, the input shape
and the input come from here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SpecFamily"]


class SpecFamily:
    """The shared half of :class:`profiler.glue.GlueFamily` and :class:`profiler.zoo.ModelFamily`."""

    name = ""
    dtype = "float32"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self, config: Mapping[str, Any]) -> str:
        text = json.dumps(self.validate(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{self.name}:{text}".encode()).hexdigest()

    def input_shape(self, config: Mapping[str, Any], batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, *self.validate(config)["input"][1:])

    def make_input(self, config: Mapping[str, Any], batch_size: int = 1, device: str = "cpu", seed: int = 0) -> Any:
        import torch

        g = torch.Generator().manual_seed(seed)
        return torch.randn(*self.input_shape(config, batch_size), generator=g).to(device)
