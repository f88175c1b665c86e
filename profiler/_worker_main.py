"""The worker process's main loop (runs in a spawned child; see :mod:`profiler.worker`)."""

from __future__ import annotations

import ctypes
import os
import resource
import time
import traceback
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def pin_malloc() -> bool:
    """Keep freed heap memory in the process (glibc ``mallopt``).

    By default glibc serves large blocks with ``mmap`` and returns freed memory to the OS, with thresholds that
    adapt to the allocation history of the process. Blocks with large activations then page-fault on every
    invocation in some processes and not in others: the min of one process was 1.7-2x another's for a 27 ms
    block on this CPU. Fixing both thresholds high makes every invocation reuse the same warm pages.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(2**31 - 1)) == 1
    return bool(ok and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1)) == 1)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    msg = str(exc).lower()
    return name == "OutOfMemoryError" or "out of memory" in msg or "can't allocate memory" in msg


def _short(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg[:300]}" if msg else type(exc).__name__


def measure_one(device: Any, family: Any, config: dict[str, Any], protocol: Any) -> dict[str, Any]:
    """Build, warm up and time one block in this process; returns the result message body.

    With ``protocol.placements > 1`` the block is built and timed that many times, each time after a small
    random-size pad allocation and while the previous build is still alive, so that weights and activations
    land at other addresses; the statistics are taken over all samples (see ``AdaptiveProtocol``). While the
    placements' minima disagree by more than ``protocol.max_noise``, further placements follow (up to
    ``protocol.max_placements``).
    """
    import numpy as np
    import torch

    from profiler.protocol import Timing, run_samples

    t0 = time.perf_counter()
    cfg = family.validate(config)
    rng = np.random.default_rng()
    pads, runs, build_s = [], [], 0.0
    module = x = None
    before = device.state()
    minima: list[float] = []
    placement = -1
    while protocol.wants_another_placement(minima):
        placement += 1
        tb = time.perf_counter()
        if placement:
            pads.append(torch.empty(int(rng.integers(16, 1 << 16)), device=device.torch_device))
        new_module = family.build(cfg).to(device.torch_device, dtype=device.torch_dtype).eval()
        new_x = family.make_input(cfg, batch_size=device.batch_size, device=device.torch_device).to(device.torch_dtype)
        module, x = new_module, new_x  # the previous placement is freed only now
        build_s += time.perf_counter() - tb
        with torch.inference_mode():
            per = protocol.per_placement(first=placement == 0)
            runs.append(run_samples(per, lambda m=module, x=x: m(x), device.timer()))
        minima.append(float(runs[-1].samples.min()))
    device.synchronize()
    after = device.state()
    timing = Timing.combine(runs)
    total_s = time.perf_counter() - t0
    return {"timing": timing.as_dict(), "build_s": build_s, "total_s": total_s,
            "device_state": {"before": before, "after": after} if before or after else {}}


def _process_warmup(device: Any) -> None:
    """Run a small convolution block once so that one-off library initialisation (kernel selection, thread
    pools, lazy imports) is not charged to the first measured block."""
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                            torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)).eval()
    m = m.to(device.torch_device, dtype=device.torch_dtype)
    with torch.inference_mode():
        for _ in range(3):
            m(torch.randn(1, 8, 16, 16, device=device.torch_device, dtype=device.torch_dtype))
    device.synchronize()


def worker_main(conn: Any, device: Any, memory_limit: int | None) -> None:
    """Set the process up, report the fingerprint, then answer measurement jobs until told to stop."""
    malloc_pinned = pin_malloc()
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        import torch

        import profiler.families
        import profiler.protocol  # noqa: F401

        device.setup()
        fp = device.fingerprint()
        _process_warmup(device)
    except BaseException as exc:  # report set-up failures to the parent instead of dying silently
        conn.send(("setup_failed", _short(exc)))
        return
    conn.send(("ready", {"fingerprint": fp, "pid": os.getpid(), "malloc_pinned": malloc_pinned}))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        _, family, config, protocol = msg
        fatal = False
        try:
            conn.send(("ok", measure_one(device, family, config, protocol)))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            oom = _is_oom(exc)
            reason = ("out of memory: " if oom else "") + _short(exc)
            cuda_error = getattr(torch, "AcceleratorError", RuntimeError)
            # after a CUDA error other than out-of-memory the context is unusable: restart the worker
            fatal = device.kind == "cuda" and not oom and isinstance(exc, cuda_error) and "cuda" in str(exc).lower()
            conn.send(("failed", {"reason": reason, "oom": oom, "traceback": traceback.format_exc(limit=8)}))
            if oom and device.kind == "cuda":
                torch.cuda.empty_cache()
        # no gc.collect() after a job: it costs ~0.1 s with torch loaded; blocks are freed by refcount
        if fatal:
            return
