"""Glue: the layers of a model that no block family took (stems, pooling, heads, unusual layers), each rebuilt
alone from a spec and measured once per platform like any block (family ``glue`` in the store).

:func:`op_spec` describes a layer call (its type, the arguments that rebuild it, the input shape it read);
:data:`GLUE` is the family-like object through which the profiler builds and measures such specs, keyed by a
hash of the spec, so a glue layer shared by many models (a ResNet stem) is measured once.

Example:
    >>> import torch.nn as nn
    >>> spec = op_spec(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), (1, 3, 224, 224))
    >>> spec["type"], spec["args"]["kernel_size"], spec["input"]
    ('Conv2d', [7, 7], [1, 3, 224, 224])
    >>> tuple(GLUE.build(spec)(GLUE.make_input(spec)).shape)
    (1, 64, 112, 112)
    >>> op_spec(nn.LSTM(4, 4), (1, 4))["type"]
    'LSTM'
    >>> GLUE.validate(op_spec(nn.LSTM(4, 4), (1, 4)))
    Traceback (most recent call last):
    ...
    ValueError: glue layer 'LSTM' cannot be rebuilt alone (supported: AdaptiveAvgPool2d, AvgPool2d, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from profiler.spec_family import SpecFamily

__all__ = ["GLUE", "SUPPORTED", "GlueFamily", "op_spec"]

ACTIVATIONS = {"ReLU": "ReLU", "ReLU6": "ReLU6", "Hardswish": "Hardswish", "HardSwish": "Hardswish",
               "SiLU": "SiLU", "Swish": "SiLU", "Sigmoid": "Sigmoid", "Hardsigmoid": "Hardsigmoid",
               "HardSigmoid": "Hardsigmoid", "GELU": "GELU", "Tanh": "Tanh"}
SUPPORTED = sorted({"Conv2d", "BatchNorm2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten",
                    *ACTIVATIONS.values()})


def _pair(v: Any) -> list[int]:
    return [int(x) for x in v] if isinstance(v, tuple | list) else [int(v), int(v)]


def op_spec(module: Any, in_shape: Sequence[int]) -> dict[str, Any]:
    """The spec that rebuilds ``module`` alone, read at ``in_shape``: ``{"type", "args", "input"}`` (``args`` empty
    and the type kept as it is for a layer that cannot be rebuilt: :data:`GLUE` refuses it)."""
    t = type(module).__name__
    args: dict[str, Any] = {}
    if hasattr(module, "kernel_size") and hasattr(module, "groups") and hasattr(module, "in_channels"):
        t = "Conv2d"
        args = {"in_channels": module.in_channels, "out_channels": module.out_channels,
                "kernel_size": _pair(module.kernel_size), "stride": _pair(module.stride),
                "padding": module.padding if isinstance(module.padding, str) else _pair(module.padding),
                "dilation": _pair(module.dilation), "groups": module.groups, "bias": module.bias is not None}
    elif "BatchNorm" in t and hasattr(module, "num_features"):
        t, args = "BatchNorm2d", {"num_features": module.num_features}
    elif t in ACTIVATIONS:
        t = ACTIVATIONS[t]
    elif t == "Linear":
        args = {"in_features": module.in_features, "out_features": module.out_features,
                "bias": module.bias is not None}
    elif t in ("MaxPool2d", "AvgPool2d"):
        args = {"kernel_size": _pair(module.kernel_size), "stride": _pair(module.stride),
                "padding": _pair(module.padding), "ceil_mode": bool(module.ceil_mode)}
    elif t == "AdaptiveAvgPool2d":
        args = {"output_size": _pair(module.output_size)}
    elif t == "Flatten":
        args = {"start_dim": module.start_dim, "end_dim": module.end_dim}
    return {"type": t, "args": args, "input": [int(s) for s in in_shape]}


class GlueFamily(SpecFamily):
    """The profiler's view of glue layers: a config is an :func:`op_spec` (see the module docstring)."""

    name = "glue"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        t = config.get("type") if isinstance(config, Mapping) else None
        if t not in SUPPORTED:
            raise ValueError(f"glue layer {t!r} cannot be rebuilt alone (supported: {', '.join(SUPPORTED)})")
        shape = config.get("input")
        if not isinstance(shape, list | tuple) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"glue layer {t!r} has no valid input shape ({shape!r})")
        return {"type": t, "args": dict(config.get("args") or {}), "input": [int(s) for s in shape]}

    def build(self, config: Mapping[str, Any]) -> Any:
        import torch.nn as nn

        cfg = self.validate(config)
        a = dict(cfg["args"])
        if cfg["type"] in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            a = {k: tuple(v) if isinstance(v, list) else v for k, v in a.items()}
        if cfg["type"] == "AdaptiveAvgPool2d":
            a["output_size"] = tuple(a["output_size"])
        return getattr(nn, cfg["type"])(**a).eval()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _glue_family, ()

    def __repr__(self) -> str:
        return "<glue family: single layers of published models (profiler.glue op specs)>"


def _glue_family() -> GlueFamily:
    return GLUE


GLUE = GlueFamily()
