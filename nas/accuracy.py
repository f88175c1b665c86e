"""Accuracy evaluators for hardware-aware search: pluggable, with a real default and a cache.

An evaluator is any callable ``evaluator(network) -> float`` (accuracy in [0, 1]) with an ``id`` string that
changes whenever what it measures changes (the cache is keyed by it). :class:`DigitsEvaluator`, the default,
**really trains** each candidate: scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels, 10 classes,
shipped with scikit-learn, so it works offline), scaled to ``resolution`` pixels by nearest-neighbour repetition
(default 8: the images as they are; ``None``: the network's own input side) and copied to its input channels —
the networks are fully convolutional with a global-pool head, so they run at any input side, and training at
8 x 8 costs 16x less than at 32 x 32 (20-230 s per network at 32 x 32 on this CPU, too slow for a search);
a stratified 70/30 split (seeded); ``epochs`` epochs of Adam
(learning rate 0.01, batch 64: the paper's Table 2 settings, with fewer epochs than its 20) from a seeded
initialisation; the score is the accuracy on the held-out 30 %.

What that measures, honestly: how well the architecture learns a small, easy task in a short budget. It ranks
capacity and trainability, not ImageNet or CIFAR-10 accuracy; on this task most reasonable networks reach
0.9-1.0, so the spread between candidates is small and partly noise of the short training (a different seed moves
a network's accuracy by about a percentage point). It is a stand-in that keeps the search loop real and
offline; plug in your own evaluator for a real task (e.g. a proxy on CIFAR-10 with your data loader).

:class:`AccuracyCache` stores accuracies by (evaluator id, network key) in SQLite, so a network evaluated by
one search (say, hardware in the loop) is not trained again by another (the surrogate-guided one).

Example:
    >>> from nas.spaces import get_space
    >>> net = get_space("stacked-mbconv").sample(1, seed=0)[0]
    >>> acc = DigitsEvaluator(epochs=1, max_train=200)(net)
    >>> 0.0 <= acc <= 1.0
    True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from nas.network import Network, NetworkError

__all__ = ["AccuracyCache", "DigitsEvaluator", "Evaluator", "cached"]

Evaluator = Callable[[Network], float]


class DigitsEvaluator:
    """Short training on scikit-learn's digits, accuracy on a held-out 30 % (module docstring)."""

    def __init__(self, epochs: int = 3, batch_size: int = 64, lr: float = 0.01, seed: int = 0,
                 max_train: int | None = None, threads: int | None = None, resolution: int | None = 8) -> None:
        if int(epochs) < 1:
            raise NetworkError(f"epochs={epochs!r} is not allowed: expected at least 1")
        if int(batch_size) < 1:
            raise NetworkError(f"batch_size={batch_size!r} is not allowed: expected at least 1")
        if not lr > 0:
            raise NetworkError(f"lr={lr!r} is not allowed: expected a positive learning rate")
        self.epochs, self.batch_size, self.lr, self.seed = int(epochs), int(batch_size), float(lr), int(seed)
        if resolution is not None and int(resolution) < 8:
            raise NetworkError(f"resolution={resolution!r} is not allowed: expected at least 8 (or None)")
        self.max_train, self.threads, self.resolution = max_train, threads, resolution
        self._data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def id(self) -> str:
        extra = f"-n{self.max_train}" if self.max_train else ""
        res = "native" if self.resolution is None else self.resolution
        return f"digits-r{res}-e{self.epochs}-b{self.batch_size}-lr{self.lr:g}-s{self.seed}{extra}"

    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._data is None:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split

            X, y = load_digits(return_X_y=True)
            X = (X.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=self.seed)
            if self.max_train:
                Xtr, ytr = Xtr[: int(self.max_train)], ytr[: int(self.max_train)]
            self._data = Xtr, Xte, ytr.astype(np.int64), yte.astype(np.int64)
        return self._data

    def _inputs(self, X: np.ndarray, net: Network):
        import torch

        side = net.input_hw if self.resolution is None else int(self.resolution)
        t = torch.from_numpy(X)
        rep = -(-side // 8)
        t = t.repeat_interleave(rep, dim=2).repeat_interleave(rep, dim=3)[:, :, :side, :side]
        return t.expand(-1, net.in_channels, -1, -1).contiguous()

    def __call__(self, net: Network) -> float:
        import torch

        if net.head.classes != 10:
            raise NetworkError(f"the digits evaluator needs a 10-class head; this network has {net.head.classes}")
        Xtr, Xte, ytr, yte = self._split()
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            torch.manual_seed(self.seed)
            model = net.build().train()
            opt = torch.optim.Adam(model.parameters(), lr=self.lr)
            xtr, ttr = self._inputs(Xtr, net), torch.from_numpy(ytr)
            gen = torch.Generator().manual_seed(self.seed)
            loss_fn = torch.nn.CrossEntropyLoss()
            for _ in range(self.epochs):
                perm = torch.randperm(len(ttr), generator=gen)
                for i in range(0, len(perm), self.batch_size):
                    idx = perm[i:i + self.batch_size]
                    if len(idx) < 2:  # batch norm needs two samples
                        continue
                    opt.zero_grad()
                    loss_fn(model(xtr[idx]), ttr[idx]).backward()
                    opt.step()
            model.eval()
            with torch.inference_mode():
                xte = self._inputs(Xte, net)
                pred = torch.cat([model(xte[i:i + 256]).argmax(1) for i in range(0, len(xte), 256)])
            return float((pred.numpy() == yte).mean())
        finally:
            torch.set_num_threads(old_threads)

    def __repr__(self) -> str:
        return f"DigitsEvaluator({self.id})"


class AccuracyCache:
    """Accuracies by (evaluator id, network key) in an SQLite file (one writer: the search process)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from acquisition.store import open_database

        self.path = os.fspath(path)
        self.db = open_database(self.path)
        self.db.enable_wal()
        if "accuracy" not in self.db.table_names():
            self.db["accuracy"].create({"evaluator": str, "network": str, "accuracy": float, "seconds": float,
                                        "spec": str}, pk=("evaluator", "network"))

    def get(self, evaluator_id: str, key: str) -> float | None:
        rows = list(self.db["accuracy"].rows_where("evaluator = ? and network = ?", [evaluator_id, key]))
        return float(rows[0]["accuracy"]) if rows else None

    def put(self, evaluator_id: str, net: Network, accuracy: float, seconds: float) -> None:
        with self.db.conn:
            self.db["accuracy"].upsert({"evaluator": evaluator_id, "network": net.key, "accuracy": float(accuracy),
                                        "seconds": float(seconds), "spec": net.to_json()},
                                       pk=("evaluator", "network"))

    def close(self) -> None:
        self.db.close()


def cached(evaluator: Evaluator, cache: AccuracyCache | None) -> Callable[[Network], tuple[float, float, bool]]:
    """``net -> (accuracy, seconds spent now, whether it came from the cache)``."""
    eid = str(getattr(evaluator, "id", type(evaluator).__name__))

    def run(net: Network) -> tuple[float, float, bool]:
        if cache is not None:
            hit = cache.get(eid, net.key)
            if hit is not None:
                return hit, 0.0, True
        t0 = time.perf_counter()
        acc = float(evaluator(net))
        if not 0.0 <= acc <= 1.0:
            raise NetworkError(f"the evaluator {eid!r} returned accuracy {acc!r}: expected a value in [0, 1]")
        dt = time.perf_counter() - t0
        if cache is not None:
            cache.put(eid, net, acc, dt)
        return acc, dt, False

    return run
