"""Predictor bundles: round trip for every model, manifest contents, and refusal of tampered payloads, unknown
format versions, foreign families/spaces and payloads that name untrusted types."""

from __future__ import annotations

import fractions
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from profiler.families import BlockFamily, get_family
from profiler.space import Integer, Space
from profiler.tabular import TabularFamily
from surrogates import BundleError, FeatureEncoder, export_bundle, get_model, load_bundle, read_manifest
from surrogates.bundle import BUNDLE_VERSION, LEAN, MANIFEST, PAYLOAD
from surrogates.lean import LeanModel
from surrogates.models import CommitteeRegressor
from tests.surrogates.synthetic import block_dataset

SMALL = {"linear": {}, "rf": {"n_estimators": 10}, "gbt": {"max_iter": 20}, "mlp": {"max_epochs": 10},
         "quantile-gbt": {"max_iter": 20}, "ngboost": {"n_estimators": 20},
         "ngboost-ensemble": {"n_members": 2, "n_estimators": 10}, "linear-gbt": {"n_estimators": 20}}


@pytest.fixture(scope="module")
def data():
    fam, cfgs, y = block_dataset("resv2", 80, seed=2)
    return fam, cfgs, y, FeatureEncoder(fam)


def _export(path: Path, data, name: str = "gbt") -> tuple:
    _, cfgs, y, enc = data
    model = get_model(name, **SMALL[name]).fit(enc.transform(cfgs), y)
    manifest = export_bundle(path, model, enc, model_name=name, platform={"id": "p1", "fingerprint": {"cpu": "x"}},
                             n_train=len(y), metrics={"spearman": 0.99})
    return model, manifest


@pytest.mark.parametrize("name", list(SMALL))
def test_round_trip_predicts_the_same(name: str, data, tmp_path: Path) -> None:
    fam, cfgs, _, enc = data
    model, _ = _export(tmp_path / "m.bundle", data, name)
    pred = load_bundle(tmp_path / "m.bundle", family="resv2")
    a, b = model.predict_dist(enc.transform(cfgs)), pred.predict_dist(cfgs)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    assert pred.platform == "p1" and pred.family is fam


@pytest.mark.parametrize("name", list(SMALL))
def test_a_lean_load_predicts_the_same_or_loads_in_full(name: str, data, tmp_path: Path) -> None:
    _, cfgs, _, enc = data
    model, manifest = _export(tmp_path / "m.bundle", data, name)
    pred = load_bundle(tmp_path / "m.bundle", family="resv2", lean=True)
    assert isinstance(pred.model, LeanModel) == (name in ("gbt", "linear")) == ("lean" in manifest)
    a, b = model.predict_dist(enc.transform(cfgs)), pred.predict_dist(cfgs)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-9)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-9)


def test_a_campaigns_committee_is_exported_lean_and_checked(data, tmp_path: Path) -> None:
    _, cfgs, y, enc = data
    path = tmp_path / "c.bundle"
    model = CommitteeRegressor(get_model("gp"), n_folds=3, random_state=0).fit(enc.transform(cfgs), y)
    export_bundle(path, model, enc, model_name="gp", platform={"id": "p1"}, n_train=len(y))
    pred = load_bundle(path, lean=True)
    assert isinstance(pred.model, LeanModel)
    np.testing.assert_allclose(pred.predict(cfgs), model.predict(enc.transform(cfgs)), rtol=1e-9)
    with pytest.raises(BundleError, match="for family 'resv2', not 'mbconv'"):
        load_bundle(path, family="mbconv", lean=True)
    with zipfile.ZipFile(path) as zf:
        lean = bytearray(zf.read(LEAN))
    lean[len(lean) // 2] ^= 0xFF
    _rewrite(path, lean=bytes(lean))
    with pytest.raises(BundleError, match="lean model does not match"):
        load_bundle(path, lean=True)
    assert isinstance(load_bundle(path).model, CommitteeRegressor)  # the full payload is intact


def test_manifest_says_what_the_design_asks(data, tmp_path: Path) -> None:
    _, manifest = _export(tmp_path / "m.bundle", data)
    m = read_manifest(tmp_path / "m.bundle")
    assert m == json.loads(json.dumps(manifest))
    assert m["family"] == "resv2" and m["space_hash"] == get_family("resv2").space.hash()
    assert m["encoder"]["version"] == 2 and m["n_train"] == 80 and m["metrics"]["spearman"] == 0.99
    assert m["platform"]["fingerprint"] == {"cpu": "x"}
    assert {"numpy", "scikit-learn", "ngboost", "skops"} <= set(m["versions"])
    with zipfile.ZipFile(tmp_path / "m.bundle") as zf:
        assert m["payload"]["sha256"] == hashlib.sha256(zf.read(PAYLOAD)).hexdigest()


def _rewrite(path: Path, *, manifest=None, payload=None, lean=None) -> None:
    with zipfile.ZipFile(path) as zf:
        old = {n: zf.read(n) for n in zf.namelist()}
    new = {MANIFEST: json.dumps(manifest).encode() if manifest is not None else old[MANIFEST],
           PAYLOAD: payload if payload is not None else old[PAYLOAD]}
    if LEAN in old or lean is not None:
        new[LEAN] = lean if lean is not None else old[LEAN]
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in new.items():
            zf.writestr(name, content)


def test_tampered_payload_is_refused(data, tmp_path: Path) -> None:
    path = tmp_path / "m.bundle"
    _export(path, data)
    with zipfile.ZipFile(path) as zf:
        payload = bytearray(zf.read(PAYLOAD))
    payload[len(payload) // 2] ^= 0xFF
    _rewrite(path, payload=bytes(payload))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(path)


def test_untrusted_types_are_refused_even_with_a_matching_checksum(data, tmp_path: Path) -> None:
    """A crafted bundle whose manifest matches its payload still cannot make the loader build foreign types."""
    import skops.io as sio

    path = tmp_path / "m.bundle"
    _export(path, data)
    evil = sio.dumps({"x": fractions.Fraction(1, 3)})  # a type outside the allow-list
    m = read_manifest(path)
    m["payload"]["sha256"] = hashlib.sha256(evil).hexdigest()
    _rewrite(path, manifest=m, payload=evil)
    with pytest.raises(BundleError, match=r"outside the allow-list: fractions\.Fraction"):
        load_bundle(path)


def test_unknown_format_version_is_refused(data, tmp_path: Path) -> None:
    path = tmp_path / "m.bundle"
    _export(path, data)
    m = read_manifest(path)
    _rewrite(path, manifest={**m, "format_version": BUNDLE_VERSION + 1})
    with pytest.raises(BundleError, match=f"format version {BUNDLE_VERSION + 1}"):
        load_bundle(path)


def test_another_family_or_space_is_refused(data, tmp_path: Path) -> None:
    path = tmp_path / "m.bundle"
    _export(path, data)
    with pytest.raises(BundleError, match="for family 'resv2', not 'mbconv'"):
        load_bundle(path, family="mbconv")
    with pytest.raises(BundleError, match="not 'resv1'"):
        load_bundle(path, family=get_family("resv1"))

    class Narrower(BlockFamily):  # same name, another space
        name = "resv2"
        space = Space([Integer("cin", 8, 16)])

    with pytest.raises(BundleError, match="another space"):
        load_bundle(path, family=Narrower())


def test_unregistered_family_and_encoder_version(data, tmp_path: Path) -> None:
    path = tmp_path / "m.bundle"
    _export(path, data)
    m = read_manifest(path)
    _rewrite(path, manifest={**m, "family": "nobody"})
    with pytest.raises(BundleError, match="'nobody', which is not registered"):
        load_bundle(path)
    _rewrite(path, manifest={**m, "encoder": {**m["encoder"], "version": 7}})
    with pytest.raises(BundleError, match="feature-encoder version 7"):
        load_bundle(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", None])
def test_files_that_are_not_bundles(content: bytes | None, tmp_path: Path) -> None:
    path = tmp_path / "x.bundle"
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("other.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(BundleError, match="not a predictor bundle"):
        load_bundle(path)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "missing.bundle")


def test_tabular_family_bundle_loads_without_the_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [{"hw": str(h), "c": str(c), "act": a} for h, c, a in zip(rng.choice([7, 14, 28, 56], 60),
                                                                    rng.choice([16, 32, 64, 128], 60),
                                                                    rng.choice(["relu", "hswish"], 60), strict=True)]
    fam = TabularFamily.from_rows("table-demo", rows, params=["hw", "c", "act"])
    enc = FeatureEncoder(fam)
    X = enc.transform(rows)
    y = np.exp(X[:, 0] + X[:, 1] / 3)
    model = get_model("gbt", max_iter=20).fit(X, y)
    export_bundle(tmp_path / "t.bundle", model, enc, model_name="gbt", platform={"id": "replay"}, n_train=60)
    pred = load_bundle(tmp_path / "t.bundle")
    np.testing.assert_allclose(pred.predict(rows[:3]), model.predict(X[:3]))


def test_export_refuses_unfitted_models_and_missing_directories(data, tmp_path: Path) -> None:
    _, cfgs, y, enc = data
    with pytest.raises(BundleError, match="not fitted"):
        export_bundle(tmp_path / "m.bundle", get_model("gbt"), enc, model_name="gbt", platform={}, n_train=0)
    model = get_model("gbt", max_iter=5).fit(enc.transform(cfgs), y)
    with pytest.raises(BundleError, match="does not exist"):
        export_bundle(tmp_path / "no" / "m.bundle", model, enc, model_name="gbt", platform={}, n_train=1)
