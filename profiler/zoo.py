"""Published models by name: ``torchvision:resnet50``, ``timm:mobilenetv3_large_100`` (architecture only).

:func:`load_model` builds the model with random weights, in eval mode: no weights are ever downloaded. It needs
the optional extra ``latency-acquisition[models]`` (torchvision, timm).

torchvision's wheels on PyPI carry a C++ extension built against the CUDA build of torch; beside the CPU build
(``torch==2.13.0+cpu``) that extension does not load and ``import torchvision`` fails (``operator torchvision::nms
does not exist``). The model definitions themselves are plain Python and need none of its operators, so when the
normal import fails, :func:`import_torchvision` imports the package without running its ``__init__`` (which
registers the operators): ``torchvision.models`` and ``torchvision.ops.misc`` work, the C++ operators do not.

Example:
    >>> model = load_model("torchvision:resnet18")  # doctest: +SKIP
    >>> sum(p.numel() for p in model.parameters())  # doctest: +SKIP
    11689512
    >>> load_model("keras:resnet50")
    Traceback (most recent call last):
    ...
    profiler.zoo.ModelNameError: model 'keras:resnet50' is not allowed: expected torchvision:NAME or timm:NAME
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Mapping
from typing import Any

from profiler.spec_family import SpecFamily

__all__ = ["INSTALL_HINT", "MODEL", "ModelFamily", "ModelNameError", "import_torchvision", "list_models",
           "load_model", "split_name"]

INSTALL_HINT = "pip install 'latency-acquisition[models]'"
SOURCES = ("torchvision", "timm")


class ModelNameError(ValueError):
    """A model name that is malformed, names an unknown source, or a model the source does not have."""


def import_torchvision() -> Any:
    """The ``torchvision`` package; its model definitions even where its C++ extension cannot load (see the
    module docstring)."""
    try:
        import torchvision
        return torchvision
    except ImportError as exc:
        raise ModelNameError(f"torchvision models need torchvision, which is not installed here: {INSTALL_HINT}") \
            from exc
    except RuntimeError:  # the extension was built for another torch: import the pure-Python parts only
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("torchvision")
        if spec is None or spec.origin is None:  # pragma: no cover - it was importable a moment ago
            raise
        pkg = types.ModuleType("torchvision")
        pkg.__path__ = [os.path.dirname(spec.origin)]
        pkg.__spec__ = spec
        pkg.__file__ = spec.origin
        sys.modules["torchvision"] = pkg
        return pkg


def split_name(name: str) -> tuple[str, str]:
    """``(source, model)`` of ``torchvision:NAME`` / ``timm:NAME``; a one-line :class:`ModelNameError` otherwise."""
    source, sep, model = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not sep or source not in SOURCES or not model or not model.replace("_", "").replace(".", "").isalnum():
        raise ModelNameError(f"model {name!r} is not allowed: expected torchvision:NAME or timm:NAME")
    return source, model


def list_models(source: str) -> list[str]:
    """The classification models ``source`` (``torchvision`` or ``timm``) offers, as ``source:NAME``."""
    if source == "torchvision":
        import_torchvision()
        from torchvision import models

        return [f"torchvision:{m}" for m in models.list_models(module=models)]
    if source == "timm":
        timm = _timm()
        return [f"timm:{m}" for m in timm.list_models()]
    raise ModelNameError(f"model source {source!r} is not allowed: expected torchvision or timm")


def _timm() -> Any:
    import_torchvision()  # timm imports torchvision's ops.misc
    try:
        import timm
    except ImportError:
        raise ModelNameError(f"timm models need timm, which is not installed here: {INSTALL_HINT}") from None
    return timm


def load_model(name: str) -> Any:
    """The model ``name`` (``torchvision:NAME`` or ``timm:NAME``) with random weights, in eval mode; a one-line
    :class:`ModelNameError` for a malformed or unknown name."""
    source, model = split_name(name)
    import torch

    torch.manual_seed(0)
    if source == "torchvision":
        import_torchvision()
        from torchvision import models

        try:
            return models.get_model(model, weights=None).eval()
        except ValueError:
            raise ModelNameError(f"torchvision has no model {model!r} (e.g. resnet50, mobilenet_v2, "
                                 "mnasnet1_0)") from None
    timm = _timm()
    if not timm.is_model(model):
        raise ModelNameError(f"timm has no model {model!r} (e.g. resnet50, mobilenetv2_100, mnasnet_100)")
    return timm.create_model(model, pretrained=False).eval()


class ModelFamily(SpecFamily):
    """The profiler's view of whole published models (hardware in the loop): a config is ``{"model": NAME,
    "input": [1, 3, 224, 224]}``, built by :func:`load_model`; stored under family ``model``, keyed by a hash of
    the config, so a model is measured once per platform and protocol."""

    name = "model"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(config, Mapping):
            raise ValueError(f"a model config is a mapping with 'model' and 'input', not {config!r}")
        split_name(config.get("model", ""))
        shape = config.get("input", [1, 3, 224, 224])
        if not isinstance(shape, list | tuple) or len(shape) != 4 or not all(isinstance(v, int) and v > 0
                                                                             for v in shape):
            raise ValueError(f"model input shape {shape!r} is not allowed: expected 4 positive integers (NCHW)")
        return {"model": config["model"], "input": [int(v) for v in shape]}

    def build(self, config: Mapping[str, Any]) -> Any:
        return load_model(self.validate(config)["model"])

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _model_family, ()

    def __repr__(self) -> str:
        return "<model family: whole published models (torchvision, timm)>"


def _model_family() -> ModelFamily:
    return MODEL


MODEL = ModelFamily()
