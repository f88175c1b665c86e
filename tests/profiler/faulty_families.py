"""Test-only block families that misbehave on purpose: hang, raise, segfault, abort or over-allocate.
Module-level so that the worker process can unpickle them."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

import torch

from profiler.families import BlockFamily
from profiler.space import Integer, Space

__all__ = ["Abort", "AnnouncedHang", "CountBuilds", "GpuHog", "Hang", "OverAllocate", "Raise", "Segfault",
           "Sleep"]


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


class AnnouncedHang(Hang):
    """Hangs like :class:`Hang`, after writing its worker's pid to ``path`` when the block is first called: a test
    can act on a worker that is certainly mid-job, without guessing how long the job takes to get there."""

    name = "test-announced-hang"

    def __init__(self, path: str = "") -> None:
        self.path = path

    def fault(self, cfg: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")
        super().fault(cfg)


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


SLEEP, HANG, RAISE, SEGFAULT, ABORT, OVERALLOCATE = Sleep(), Hang(), Raise(), Segfault(), Abort(), OverAllocate()
GPU_HOG = GpuHog()
