"""Test-only block families that misbehave on purpose: hang, raise, segfault, abort, over-allocate, or time
bimodally. Module-level so that the worker process can unpickle them."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

import torch

from profiler.families import BlockFamily
from profiler.space import Integer, Space

__all__ = ["Abort", "Bimodal", "CountBuilds", "GpuHog", "Hang", "OverAllocate", "Raise", "Segfault", "Sleep"]


class _Call(torch.nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.fn()
        return x


class _Fault(BlockFamily):
    """A family with one integer dimension ``ms``; ``fault(cfg)`` runs inside the timed forward."""

    space = Space([Integer("ms", 0, 1000)])

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, 1, 2, 2)

    def fault(self, cfg: dict[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def build(self, config: Any) -> torch.nn.Module:
        cfg = self.validate(config)
        return _Call(lambda: self.fault(cfg))


class Sleep(_Fault):
    """Well-behaved: sleeps ``ms`` milliseconds per invocation."""

    name = "test-sleep"

    def fault(self, cfg: dict[str, Any]) -> None:
        time.sleep(cfg["ms"] / 1000)


class Hang(_Fault):
    name = "test-hang"

    def fault(self, cfg: dict[str, Any]) -> None:
        while True:
            time.sleep(1)


class Raise(_Fault):
    name = "test-raise"

    def build(self, config: Any) -> torch.nn.Module:
        raise ValueError(f"broken block {config['ms']}")


class Segfault(_Fault):
    name = "test-segfault"

    def fault(self, cfg: dict[str, Any]) -> None:
        ctypes.string_at(0)


class Abort(_Fault):
    name = "test-abort"

    def fault(self, cfg: dict[str, Any]) -> None:
        os.abort()


class OverAllocate(_Fault):
    """Allocates (and touches) 256 MiB tensors until the allocation fails: run with a memory limit."""

    name = "test-overallocate"

    def fault(self, cfg: dict[str, Any]) -> None:
        keep = []
        for _ in range(400):  # 100 GiB: far above any test memory limit
            keep.append(torch.ones(2**26))


class GpuHog(_Fault):
    """Asks the GPU for 128 TiB."""

    name = "test-gpu-hog"

    def fault(self, cfg: dict[str, Any]) -> None:
        torch.empty(2**45, device="cuda")


_PROCESS_BIMODAL: bool | None = None


class CountBuilds(_Fault):
    """Appends one line to ``path`` per build (tests count the placements of a measurement)."""

    name = "test-count-builds"

    def __init__(self, path: str = "") -> None:
        self.path = path

    def fault(self, cfg: dict[str, Any]) -> None:
        pass

    def build(self, config: Any) -> torch.nn.Module:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")
        return super().build(config)


class Bimodal(_Fault):
    """Times bimodally (4 ms, with a 1 ms fast mode on every 16th call, so well under 10 % of the samples) in
    processes where ``marker`` does not exist yet; creates it,
    so that a re-measurement in a fresh process is stable. ``always=True`` stays bimodal everywhere."""

    name = "test-bimodal"

    def __init__(self, marker: str = "", always: bool = False) -> None:
        self.marker = marker
        self.always = always

    def build(self, config: Any) -> torch.nn.Module:
        global _PROCESS_BIMODAL
        if _PROCESS_BIMODAL is None:  # decided once per process (a measurement builds once per placement)
            _PROCESS_BIMODAL = self.always or not os.path.exists(self.marker)
            if not self.always:
                open(self.marker, "a").close()
        bimodal = _PROCESS_BIMODAL
        state = {"i": 0}

        def fault() -> None:
            state["i"] += 1
            slow = bimodal and state["i"] % 16 != 0
            time.sleep(0.004 if slow else 0.001)

        return _Call(fault)


SLEEP, HANG, RAISE, SEGFAULT, ABORT, OVERALLOCATE = Sleep(), Hang(), Raise(), Segfault(), Abort(), OverAllocate()
GPU_HOG = GpuHog()
