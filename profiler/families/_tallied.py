"""What the built-in families counted in closed form share: the input shape from ``cin`` and ``input_hw``, counts
from a :class:`~profiler.families._layers.Tally` walk, the two size constraints, and unpickling to the registered
instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from profiler.families._base import BlockFamily, Counts, get_family
from profiler.families._layers import ACTIVATION_LIMIT, MACS_LIMIT, Tally
from profiler.space import Constraint

__all__ = ["TalliedFamily", "size_constraints"]

Check = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class _Within:
    """A size limit as a picklable check (a space travels to worker processes): ``tally(cfg).<what> <= limit``,
    after ``shape_ok`` (the tally may need it)."""

    tally: Callable[[Mapping[str, Any]], Tally]
    what: str
    limit: int
    shape_ok: Check | None = None

    def __call__(self, cfg: Mapping[str, Any]) -> bool:
        if self.shape_ok is not None and not self.shape_ok(cfg):
            return False
        return getattr(self.tally(cfg), self.what) <= self.limit


def size_constraints(tally: Callable[[Mapping[str, Any]], Tally], shape_ok: Check | None = None
                     ) -> list[Constraint]:
    """The largest activation and the multiply-accumulates of a block within the limits every built-in family
    keeps (``shape_ok``, when given, is checked first: the tally may need it)."""
    return [
        Constraint("activation_size", _Within(tally, "max_activation", ACTIVATION_LIMIT, shape_ok),
                   f"the largest activation tensor must have at most {ACTIVATION_LIMIT:,} elements (224 x 224 x 64)"),
        Constraint("macs", _Within(tally, "macs", MACS_LIMIT, shape_ok),
                   f"the block must cost at most {MACS_LIMIT:.0e} multiply-accumulates"),
    ]


class TalliedFamily(BlockFamily):
    """A family whose input is ``(batch, cin, input_hw, input_hw)`` and whose counts are :meth:`tally`'s."""

    @staticmethod
    def tally(cfg: Mapping[str, Any]) -> Tally:
        raise NotImplementedError

    def input_shape(self, config: Mapping[str, Any], batch_size: int = 1) -> tuple[int, int, int, int]:
        cfg = self.validate(config)
        return (batch_size, cfg["cin"], cfg["input_hw"], cfg["input_hw"])

    def counts(self, config: Mapping[str, Any]) -> Counts:
        return self.tally(self.validate(config)).counts(self.dtype)

    def counts_of_valid(self, config: Mapping[str, Any]) -> Counts:
        """:meth:`counts` of a configuration this family already validated (no second validation: the feature
        encoder calls it for thousands of candidates)."""
        return self.tally(config).counts(self.dtype)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Unpickle to the registered instance (also in a fresh worker process).
        return get_family, (self.name,)
