"""Predictor bundles: a fitted model plus everything needed to use it safely elsewhere (docs/design.md §4).

A bundle is one zip file with two or three members:

- ``manifest.json``: format and version, family name and kind, the family's space (spec and hash), the
  feature encoder's spec (and version), the model name and parameters, the platform (id and fingerprint),
  the training size, validation metrics, package versions, and the sha256 of the payload;
- ``model.skops``: the fitted model, saved with `skops <https://skops.readthedocs.io>`_;
- ``lean.npz``, for the models that have a lean form (:mod:`surrogates.lean`: the committees of ``gbt``, ``gp`` and
  ``linear`` that campaigns export, a plain ``gbt`` or ``linear``): the same model as plain arrays (numpy's format,
  read without pickle), its program and sha256 in the manifest. ``load_bundle(path, lean=True)`` predicts from it
  without importing scikit-learn or skops: ``predict`` in a fresh process starts in a fraction of the time.

Why skops and not pickle: loading a pickle executes whatever code the file names. skops stores the object
tree as data and, on load, rebuilds only types on an allow-list; :func:`load_bundle` allows exactly the types
our models are made of (our model classes, scikit-learn's trees and boosting, ngboost's distribution classes,
numpy/scipy building blocks) and refuses a payload that names any other type. The sha256 in the manifest
catches a payload that was changed after export (corruption or tampering with the model alone); it does not
authenticate the bundle as a whole, so only load bundles from sources you trust not to craft both files.

Loading also refuses an unknown format version, an encoder version this code cannot reproduce, and a bundle
whose family or space differs from the one registered here (or from the one the caller expects).

Example:
    >>> import os, tempfile
    >>> from profiler.families import get_family
    >>> from surrogates import FeatureEncoder, get_model
    >>> fam = get_family("mbconv"); cfgs = fam.space.sample(40, seed=1)
    >>> enc = FeatureEncoder(fam); X = enc.transform(cfgs)
    >>> y = [fam.counts(c).macs / 1e6 + 1 for c in cfgs]  # a stand-in latency for the example
    >>> model = get_model("gbt", max_iter=50, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.bundle")
    >>> _ = export_bundle(path, model, enc, model_name="gbt", platform={"id": "demo"}, n_train=40)
    >>> pred = load_bundle(path, family="mbconv")
    >>> bool(abs(pred.predict(cfgs[:1])[0] - model.predict(X[:1])[0]) < 1e-9)
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform as _platform
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from profiler.files import atomic_write
from surrogates._errors import BundleError
from surrogates.dist import LogLatencyDist
from surrogates.features import FeatureEncoder

# scikit-learn, skops and the models are imported where a full bundle is written or read: a lean load needs none
if TYPE_CHECKING:
    from surrogates.lean import LeanModel
    from surrogates.models import LatencyRegressor

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "BundleError", "Predictor", "export_bundle", "load_bundle",
           "read_manifest"]

BUNDLE_FORMAT = "latency-acquisition-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
PAYLOAD = "model.skops"
LEAN = "lean.npz"

# type-name prefixes a payload may contain (skops refuses everything else unless listed here)
TRUSTED_PREFIXES = (
    "surrogates.models.",
    "sklearn.",
    "ngboost.distns.", "ngboost.scores.", "ngboost.ngboost.", "ngboost.api.", "ngboost.manifold.",
    "numpy.", "scipy.",
    "builtins.",
    "collections.",
)



def _versions() -> dict[str, str]:
    out = {"python": _platform.python_version()}
    for dist in ("latency-acquisition", "numpy", "scipy", "scikit-learn", "ngboost", "skops", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def _untrusted(types: Sequence[str]) -> list[str]:
    return [t for t in types if not t.startswith(TRUSTED_PREFIXES)]


def _family_kind(family: Any) -> str:
    return getattr(family, "kind", "block")


def export_bundle(path: str | os.PathLike[str], model: LatencyRegressor, encoder: FeatureEncoder, *,
                  model_name: str, platform: Mapping[str, Any], n_train: int,
                  metrics: Mapping[str, float] | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """Write ``model`` (fitted on ``encoder``'s features) to ``path``; returns the manifest.

    The file is written to a temporary name and renamed, so an existing bundle is replaced whole or not at all.
    """
    import skops.io as sio

    from surrogates.lean import compile_model

    if not hasattr(model, "n_features_in_"):
        raise BundleError("the model is not fitted: fit it before exporting a bundle")
    if model.n_features_in_ != len(encoder.feature_names):
        raise BundleError(f"the model has {model.n_features_in_} features but the encoder makes "
                          f"{len(encoder.feature_names)}")
    payload = sio.dumps(model)
    odd = _untrusted(sio.get_untrusted_types(data=payload))
    if odd:
        raise BundleError(f"the model contains types a bundle cannot carry safely: {', '.join(odd)}")
    lean = _lean_payload(compile_model(model))
    family = encoder.family
    manifest = {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION,
        "family": family.name, "family_kind": _family_kind(family),
        "space_hash": family.space.hash(), "space": family.space.spec() if _family_kind(family) == "tabular"
        else {"dimensions": family.space.spec()["dimensions"]},
        "encoder": encoder.spec(),
        "model": {"name": model_name, "class": type(model).__name__,
                  "params": _jsonable(model.get_params(deep=False))},
        "platform": _jsonable(dict(platform)), "n_train": int(n_train), "metrics": _jsonable(dict(metrics or {})),
        "target": "log of latency (ms)", "versions": _versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "payload": {"file": PAYLOAD, "format": "skops", "sha256": hashlib.sha256(payload).hexdigest(),
                    "bytes": len(payload)},
        **({"lean": {"file": LEAN, "sha256": hashlib.sha256(lean[1]).hexdigest(), "program": lean[0]}}
           if lean else {}),
        **({"extra": _jsonable(dict(extra))} if extra else {}),
    }
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise BundleError(f"cannot write bundle {path!r}: directory {directory!r} does not exist")
    try:
        with atomic_write(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            zf.writestr(PAYLOAD, payload)
            if lean:
                zf.writestr(LEAN, lean[1])
    except OSError as exc:
        raise BundleError(f"cannot write bundle {path!r}: {exc.strerror or exc}") from None
    return manifest


def _lean_payload(compiled: tuple[dict[str, Any], dict[str, np.ndarray]] | None) -> tuple[dict, bytes] | None:
    if compiled is None:
        return None
    buf = io.BytesIO()
    np.savez(buf, **compiled[1])
    return compiled[0], buf.getvalue()


def _open(path: str, member: str = PAYLOAD) -> tuple[dict[str, Any], bytes]:
    if not os.path.isfile(path):
        raise BundleError(f"bundle {path!r} does not exist or is not a file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if MANIFEST not in names:
                raise BundleError(f"{path!r} is not a predictor bundle (no {MANIFEST})")
            manifest = json.loads(zf.read(MANIFEST))
            payload = zf.read(member) if member in names else b""
    except zipfile.BadZipFile:
        raise BundleError(f"{path!r} is not a predictor bundle (not a zip file)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{path!r}: the manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path!r} is not a predictor bundle (format {manifest.get('format')!r})"
                          if isinstance(manifest, dict) else f"{path!r}: the manifest is not an object")
    version = manifest.get("format_version")
    if version != BUNDLE_VERSION:
        raise BundleError(f"{path!r} has bundle format version {version!r}; this version reads version "
                          f"{BUNDLE_VERSION} (upgrade latency-acquisition or re-export the bundle)")
    return manifest, payload


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a bundle, checked for format and version (the payload is not loaded)."""
    return _open(os.fspath(path))[0]


def _resolve_family(manifest: Mapping[str, Any], family: Any | None):
    from profiler.families import FamilyError, get_family
    from profiler.tabular import TabularFamily

    name = manifest.get("family")
    if family is not None and not isinstance(family, str):
        fam = family
    elif manifest.get("family_kind") == "tabular":
        fam = TabularFamily.from_spec(str(name), manifest["space"])
    else:
        try:
            fam = get_family(str(name))
        except FamilyError:
            raise BundleError(f"the bundle is for family {name!r}, which is not registered here (load the "
                              "plugin that defines it)") from None
    if isinstance(family, str) and family != name:
        raise BundleError(f"the bundle is for family {name!r}, not {family!r}")
    if fam.name != name:
        raise BundleError(f"the bundle is for family {name!r}, not {fam.name!r}")
    if fam.space.hash() != manifest.get("space_hash"):
        raise BundleError(f"the bundle was fitted on another space of family {name!r} (space hash "
                          f"{manifest.get('space_hash')} here {fam.space.hash()}): refit it")
    return fam


def load_bundle(path: str | os.PathLike[str], *, family: Any | None = None, lean: bool = False) -> Predictor:
    """Load and verify a bundle; ``family`` (a name or a family object) is what the caller expects.

    ``lean``: predict from the bundle's lean form where it has one (:mod:`surrogates.lean`: the same predictions,
    without importing scikit-learn; ``Predictor.model`` is then a :class:`~surrogates.lean.LeanModel`), else load
    the model in full. Raises :class:`BundleError` for anything that does not check out (see the module docstring).
    """
    path = os.fspath(path)
    if lean:
        manifest = read_manifest(path)
        program = (manifest.get("lean") or {}).get("program")
        if isinstance(program, dict) and program.get("version") == _lean_version():
            return _load_lean(path, manifest, family)
    import skops.io as sio

    from surrogates.models import LatencyRegressor

    manifest, payload = _open(path)
    expected = (manifest.get("payload") or {}).get("sha256")
    if not payload or hashlib.sha256(payload).hexdigest() != expected:
        raise BundleError(f"{path!r}: the model payload does not match the manifest's sha256 (the bundle was "
                          "modified or damaged); refusing to load it")
    fam = _resolve_family(manifest, family)
    try:
        encoder = FeatureEncoder.from_spec(fam, manifest["encoder"])
    except ValueError as exc:
        raise BundleError(f"{path!r}: {exc}") from None
    types = sio.get_untrusted_types(data=payload)
    odd = _untrusted(types)
    if odd:
        raise BundleError(f"{path!r}: the payload names types outside the allow-list: {', '.join(odd)}")
    try:
        model = sio.loads(payload, trusted=types)
    except Exception as exc:
        raise BundleError(f"{path!r}: the model payload cannot be loaded ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, LatencyRegressor):
        raise BundleError(f"{path!r}: the payload is a {type(model).__name__}, not a latency model")
    return Predictor(model=model, encoder=encoder, manifest=manifest)


def _lean_version() -> int:
    from surrogates.lean import LEAN_VERSION

    return LEAN_VERSION


def _load_lean(path: str, manifest: Mapping[str, Any], family: Any | None) -> Predictor:
    from surrogates.lean import LeanModel

    info = manifest["lean"]
    _, data = _open(path, LEAN)
    if not data or hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise BundleError(f"{path!r}: the lean model does not match the manifest's sha256 (the bundle was "
                          "modified or damaged); refusing to load it")
    fam = _resolve_family(manifest, family)
    try:
        encoder = FeatureEncoder.from_spec(fam, manifest["encoder"])
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        model = LeanModel(info["program"], arrays)
    except (ValueError, KeyError, OSError) as exc:
        raise BundleError(f"{path!r}: {exc}") from None
    return Predictor(model=model, encoder=encoder, manifest=manifest)


class Predictor:
    """A loaded bundle: predicts the latency (ms) of configurations of its family on its platform.

    ``predict(configs)`` -> latencies (ms); ``predict_dist(configs)`` -> :class:`LogLatencyDist`.
    """

    def __init__(self, model: LatencyRegressor | LeanModel, encoder: FeatureEncoder, manifest: Mapping[str, Any]
                 ) -> None:
        self.model = model
        self.encoder = encoder
        self.manifest = dict(manifest)

    @property
    def family(self) -> Any:
        return self.encoder.family

    @property
    def platform(self) -> str | None:
        return (self.manifest.get("platform") or {}).get("id")

    def predict_dist(self, configs: Sequence[Mapping[str, Any]]) -> LogLatencyDist:
        return self.model.predict_dist(self.encoder.transform(configs))

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.model.predict(self.encoder.transform(configs))

    def __repr__(self) -> str:
        m = self.manifest
        return (f"<Predictor {m['model']['name']} for {m['family']!r} on platform {self.platform!r}, "
                f"{m['n_train']} training rows>")

