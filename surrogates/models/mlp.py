"""``mlp``: a dense network (torch) on standardised features and log-latency, with early stopping.

Trained with Adam on the mean squared error of standardised log-latency; a random ``validation_fraction`` of
the rows stops training when its loss has not improved for ``patience`` epochs, and the best weights are
kept. The predictive std is the root mean square of the validation residuals (log space), the same for every
input. The fitted state is plain numpy arrays (the forward pass at predict time is numpy), so a saved model
holds no torch objects.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); X = rng.uniform(1, 3, (200, 2)); y = np.exp(X[:, 0] * X[:, 1])
    >>> m = MLPLatencyRegressor(max_epochs=200, random_state=0).fit(X, y)
    >>> bool(np.median(np.abs(m.predict(X) / y - 1)) < 0.1)
    True
"""

from __future__ import annotations

import numpy as np

from surrogates.models._base import LatencyRegressor, check_range, holdout_std

__all__ = ["MLPLatencyRegressor"]


class MLPLatencyRegressor(LatencyRegressor):
    """Dense ReLU network ``hidden_layer_sizes`` trained by Adam (``learning_rate``, ``batch_size``)."""

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (128, 128), learning_rate: float = 1e-3,
                 weight_decay: float = 1e-5, batch_size: int = 64, max_epochs: int = 500, patience: int = 40,
                 validation_fraction: float = 0.15, random_state: int | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    _sample_weight = True

    def _validate_params(self) -> None:
        sizes = self.hidden_layer_sizes
        if not isinstance(sizes, tuple | list) or not sizes or not all(
                isinstance(h, int | np.integer) and h >= 1 for h in sizes):
            raise ValueError(f"hidden_layer_sizes={sizes!r} is not allowed: expected a non-empty tuple of "
                             "integers >= 1")
        check_range("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_range("weight_decay", self.weight_decay, low=0.0)
        check_range("batch_size", self.batch_size, low=1, integer=True)
        check_range("max_epochs", self.max_epochs, low=1, integer=True)
        check_range("patience", self.patience, low=1, integer=True)
        check_range("validation_fraction", self.validation_fraction, low=0.0, high=0.5, low_open=True)

    def _fit_log(self, X, z, sample_weight=None):
        import torch

        seed = int(self.random_state) if self.random_state is not None else int(np.random.randint(0, 2**31 - 1))
        rng = np.random.RandomState(seed)
        self.x_mean_, self.x_scale_ = X.mean(axis=0), X.std(axis=0)
        self.x_scale_[self.x_scale_ == 0] = 1.0
        self.z_mean_, self.z_scale_ = float(z.mean()), float(z.std()) or 1.0
        Xs = (X - self.x_mean_) / self.x_scale_
        zs = (z - self.z_mean_) / self.z_scale_
        n = len(zs)
        perm = rng.permutation(n)
        n_val = round(n * float(self.validation_fraction)) if n >= 20 else 0
        val, tr = (perm[:n_val], perm[n_val:]) if n_val else (perm, perm)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[torch.nn.Module] = []
            width = X.shape[1]
            for h in self.hidden_layer_sizes:
                layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
                width = int(h)
            layers.append(torch.nn.Linear(width, 1))
            net = torch.nn.Sequential(*layers).double()
            opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate),
                                   weight_decay=float(self.weight_decay))
            xt, zt = torch.from_numpy(Xs[tr]), torch.from_numpy(zs[tr])
            xv, zv = torch.from_numpy(Xs[val]), torch.from_numpy(zs[val])
            w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            wt, wv = torch.from_numpy(w[tr]), torch.from_numpy(w[val] / w[val].mean())
            best, best_state, stale = np.inf, None, 0
            bs = int(self.batch_size)
            self.n_epochs_ = 0
            for _ in range(int(self.max_epochs)):
                net.train()
                order = torch.from_numpy(rng.permutation(len(tr)))
                for i in range(0, len(tr), bs):
                    b = order[i:i + bs]
                    opt.zero_grad()
                    loss = torch.sum(wt[b] * (net(xt[b]).squeeze(1) - zt[b]) ** 2) / torch.sum(wt[b])
                    loss.backward()
                    opt.step()
                self.n_epochs_ += 1
                net.eval()
                with torch.no_grad():
                    v = float(torch.mean(wv * (net(xv).squeeze(1) - zv) ** 2))
                if v < best - 1e-7:
                    best, stale = v, 0
                    best_state = [p.detach().clone() for p in net.parameters()]
                else:
                    stale += 1
                    if stale >= int(self.patience):
                        break
            with torch.no_grad():
                for p, b in zip(net.parameters(), best_state or [], strict=False):
                    p.copy_(b)
            linears = [m for m in net if isinstance(m, torch.nn.Linear)]
            self.coefs_ = [m.weight.detach().numpy().T.copy() for m in linears]
            self.intercepts_ = [m.bias.detach().numpy().copy() for m in linears]
        self.std_ = holdout_std(self._forward(Xs[val]) * self.z_scale_ - zs[val] * self.z_scale_) if n_val else 0.0

    def _forward(self, Xs: np.ndarray) -> np.ndarray:
        h = Xs
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            h = h @ w + b
            if i < len(self.coefs_) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def _predict_log(self, X):
        mean = self._forward((X - self.x_mean_) / self.x_scale_) * self.z_scale_ + self.z_mean_
        return mean, np.full(len(mean), self.std_), None
