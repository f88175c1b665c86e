"""The latency of real models (``nas.real``, ``python -m nas predict``): blocks from bundles, glue measured once
and read from the store, the 80 % interval and the coverage; errors for a family without a bundle, glue not
measured, an unknown model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.store import Store
from nas.network import NetworkError
from nas.real import RealLatencyModel, cached_decomposition, glue_items, measure_glue
from profiler.protocol import Timing
from profiler.worker import Measurement
from profiler.zoo import ModelNameError
from tests.acquisition.test_cli import assert_one_line_error
from tests.nas.conftest import NetworkProfiler
from tests.nas.test_cli import run_nas

try:
    from profiler.zoo import _timm

    _timm()
except ModelNameError:  # pragma: no cover - the test extra installs torchvision and timm
    pytest.skip("torchvision and timm are not installed", allow_module_level=True)

GLUE_MS = 0.05  # the stand-in device's time for any glue layer


class GlueProfiler(NetworkProfiler):
    """The synthetic device, which also measures glue layers (each ``GLUE_MS``)."""

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        if family.name not in ("glue", "convbn"):  # a stem without a convbn bundle is measured like glue
            return super().measure(family, config)
        cfg = family.validate(config)
        t = Timing(min_ms=GLUE_MS, median_ms=GLUE_MS, p10_ms=GLUE_MS, p90_ms=GLUE_MS, mean_ms=GLUE_MS, n=40,
                   timed_s=0.01, warmup_n=2, warmup_s=0.0, stop="stable", spread=1.0)
        return Measurement(family=family.name, key=family.key(cfg), config=cfg, protocol=self.protocol.id,
                           platform=self.platform_id, status="ok", cost_s=0.02, timing=t)


@pytest.fixture
def measured(tmp_path: Path) -> tuple[str, str]:
    """A store holding resnet18's and mobilenet_v2's glue, measured on the bundles' (synthetic) platform."""
    cache = str(tmp_path / "cache")
    db = str(tmp_path / "g.sqlite")
    items = [it for n in ("torchvision:resnet18", "torchvision:mobilenet_v2")
             for it in glue_items(cached_decomposition(n, cache), ["mbconv", "resv1"])]
    with Store(db) as store:
        prof = GlueProfiler()
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        assert measure_glue(store, prof, items, progress=False) == len({json.dumps(c, sort_keys=True)
                                                                         for _, c in items})
        assert measure_glue(store, prof, items, progress=False) == 0  # measured once
    return db, cache


def test_a_real_model_is_its_blocks_predicted_plus_its_glue_measured(bundle_dir: str, measured) -> None:
    from nas.latency import NetworkLatencyModel

    db, cache = measured
    bundles = NetworkLatencyModel.load([os.path.join(bundle_dir, f"{f}.bundle") for f in ("mbconv", "resv1")])
    d = cached_decomposition("torchvision:resnet18", cache)
    with Store(db, readonly=True) as store:
        r = RealLatencyModel(bundles.predictors, store, "synthetic-v1").predict(d)
    # two glue layers (pool, classifier) and the stem, a convbn block without a bundle, measured like glue
    assert r.glue_ms == pytest.approx(GLUE_MS * 3) and r.blocks == 8 and r.glue_layers == 2
    assert r.as_glue == ["conv1+bn1+relu+maxpool"]
    assert r.pred_ms == pytest.approx(r.block_ms + r.glue_ms)
    assert r.p10_ms < r.pred_ms < r.p90_ms and r.coverage == pytest.approx(r.block_ms / r.pred_ms)
    # the block part is the bundles' own sum of the same blocks
    res = [p for p in d.blocks if p.family == "resv1"]
    mu = [bundles.predictors["resv1"].predict([p.config])[0] for p in res]
    assert r.block_ms == pytest.approx(sum(mu), rel=1e-6) and len(res) == 8


def test_predict_prints_json_for_many_models(bundle_dir: str, measured, tmp_path: Path) -> None:
    db, cache = measured
    (tmp_path / "models.txt").write_text("# two models\ntorchvision:resnet18\n\ntorchvision:mobilenet_v2\n")
    code, out, err = run_nas("predict", "--models-from", str(tmp_path / "models.txt"), "--bundle",
                             os.path.join(bundle_dir, "mbconv.bundle"), "--bundle",
                             os.path.join(bundle_dir, "resv1.bundle"), "--db", db, "--cache", cache, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["model"] for r in rows] == ["torchvision:resnet18", "torchvision:mobilenet_v2"]
    for r in rows:
        assert r["p10_ms"] < r["pred_ms"] < r["p90_ms"] and 0.5 < r["coverage"] < 1.0
    code, out, err = run_nas("predict", "--model", "torchvision:resnet18", "--bundle",
                             os.path.join(bundle_dir, "resv1.bundle"), "--db", db, "--cache", cache)
    assert code == 0, err
    assert out.startswith("torchvision:resnet18: ") and "8 blocks predict" in out and "2 glue layers" in out


def test_a_block_without_a_bundle_is_named_or_measured_as_glue(bundle_dir: str, measured) -> None:
    db, cache = measured
    mb = os.path.join(bundle_dir, "mbconv.bundle")
    code, _, err = run_nas("predict", "--model", "torchvision:resnet18", "--bundle", mb, "--db", db, "--cache", cache)
    assert code == 2
    assert_one_line_error(err, "block layer1.0 is of family 'resv1', which has no bundle", "--allow-glue")
    code, _, err = run_nas("predict", "--model", "torchvision:resnet18", "--bundle", mb, "--db", db, "--cache", cache,
                           "--allow-glue")
    assert code == 2  # allowed, but those blocks are not measured on the platform yet
    assert_one_line_error(err, "8 glue layer(s) are not measured on platform 5y57e71c0000", "--measure-glue")
    d = cached_decomposition("torchvision:resnet18", cache)
    with Store(db) as store:
        measure_glue(store, GlueProfiler(), glue_items(d, ["mbconv"], allow_glue=True), progress=False)
    code, out, err = run_nas("predict", "--model", "torchvision:resnet18", "--bundle", mb, "--db", db, "--cache",
                             cache, "--allow-glue", "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["coverage"] == 0.0 and r["blocks"] == 0 and len(r["blocks_as_glue"]) == 9  # and the stem


def test_bad_input_one_line_exit_2(bundle_dir: str, measured, tmp_path: Path) -> None:
    db, cache = measured
    rv = os.path.join(bundle_dir, "resv1.bundle")
    cases = [
        (["--model", "torchvision:nosuch"], ["torchvision has no model 'nosuch'"]),
        (["--model", "caffe:alexnet"], ["model 'caffe:alexnet' is not allowed"]),
        ([], ["name what to predict"]),
        (["--models-from", str(tmp_path / "none.txt")], ["--models-from", "cannot be read"]),
        (["--model", "torchvision:resnet18", "--db", str(tmp_path / "none.sqlite")], ["--db", "does not exist"]),
        (["--network", str(tmp_path / "none.json")], ["--network", "cannot be read"]),
    ]
    for argv, needles in cases:
        code, _, err = run_nas("predict", "--bundle", rv, "--cache", cache, *(["--db", db] if "--db" not in argv
                                                                               else []), *argv)
        assert code == 2, (argv, err)
        assert_one_line_error(err, *needles)


def test_glue_not_measured_is_an_error_naming_the_platform(bundle_dir: str, tmp_path: Path) -> None:
    from nas.latency import NetworkLatencyModel

    bundles = NetworkLatencyModel.load([os.path.join(bundle_dir, "resv1.bundle")])
    d = cached_decomposition("torchvision:resnet18", None)
    with Store(tmp_path / "empty.sqlite") as store, pytest.raises(NetworkError, match=r"3 glue layer\(s\) are not"):
        RealLatencyModel(bundles.predictors, store, "synthetic-v1").predict(d)


class ModelProfiler(GlueProfiler):
    """The synthetic device, which also measures whole published models: the blocks' synthetic latency + its
    glue layers at ``GLUE_MS`` each, times ``truth`` (1.0: the decomposition's own sum)."""

    truth = 1.0

    def measure(self, family: Any, config: dict[str, Any]) -> Measurement:
        if family.name != "model":
            return super().measure(family, config)
        from tests.nas.conftest import block_ms

        cfg = family.validate(config)
        d = cached_decomposition(cfg["model"], None)
        ms = self.truth * (sum(block_ms(p.family, p.config) for p in d.blocks) + GLUE_MS * len(d.glue))
        t = Timing(min_ms=ms, median_ms=ms, p10_ms=ms, p90_ms=ms, mean_ms=ms, n=40, timed_s=0.2, warmup_n=2,
                   warmup_s=0.0, stop="stable", spread=1.0)
        return Measurement(family="model", key=family.key(cfg), config=cfg, protocol=self.protocol.id,
                           platform=self.platform_id, status="ok", cost_s=0.5, timing=t)


def test_real_models_measured_whole_against_their_prediction(bundle_dir: str, measured, tmp_path: Path) -> None:
    from nas.latency import NetworkLatencyModel
    from nas.real import evaluate_real, measure_models, plot_real

    db, cache = measured
    names = ["torchvision:resnet18", "torchvision:resnet34", "torchvision:mobilenet_v2", "torchvision:mnasnet0_5"]
    bundles = NetworkLatencyModel.load([os.path.join(bundle_dir, f"{f}.bundle") for f in ("mbconv", "resv1")])
    prof = ModelProfiler()
    with Store(db) as store:
        ds = [cached_decomposition(n, cache) for n in names]
        measure_glue(store, prof, [it for d in ds for it in glue_items(d, ["mbconv", "resv1"])], progress=False)
        y = measure_models(store, prof, names, progress=False)
        again = measure_models(store, prof, names, progress=False)  # stored: measured once
        model = RealLatencyModel(bundles.predictors, store, prof.protocol.id)
        res = evaluate_real([model.predict(d) for d in ds], y)
    assert np.array_equal(y, again) and res["n"] == 4 and res["failed"] == 0
    assert [r["model"] for r in res["models"]] == names
    # the bundles learned the synthetic law: the predicted sum is within a few % of the synthetic truth
    assert res["metrics"]["mape"] < 10 and res["metrics"]["spearman"] == pytest.approx(1.0)
    for r in res["models"]:
        assert r["error_pct"] == pytest.approx(100 * (r["pred_ms"] / r["measured_ms"] - 1))
    png = plot_real(res, tmp_path / "real.png")
    assert Path(png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_published_model_is_measured_whole_on_this_cpu(tmp_path: Path) -> None:
    from nas.real import measure_models
    from profiler.devices import CpuDevice
    from profiler.protocol import AdaptiveProtocol
    from profiler.worker import Profiler

    with Store(tmp_path / "m.sqlite") as store, Profiler(CpuDevice(threads=1), AdaptiveProtocol()) as prof:
        store.ensure_platform(prof.platform_id, prof.fingerprint, prof.device.spec)
        (ms,) = measure_models(store, prof, ["timm:mobilenetv2_050"], progress=False)
        assert 0 < ms < 10_000
        row = next(iter(store.find(prof.platform_id, "model", prof.protocol.id,
                                   [store_key("timm:mobilenetv2_050")]).values()))
        assert row["status"] == "ok" and row["cost_s"] > 0  # charged like any measurement


def store_key(name: str) -> str:
    from profiler.zoo import MODEL

    return MODEL.key({"model": name, "input": [1, 3, 224, 224]})


def test_an_unknown_calibration_space_is_named_before_anything_is_measured(bundle_dir: str, tmp_path: Path) -> None:
    code, _, err = run_nas("evaluate", "--bundle", os.path.join(bundle_dir, "resv1.bundle"), "--model",
                           "torchvision:resnet18", "--calibrate-space", "nosuch", "--db", str(tmp_path / "x.sqlite"),
                           "--cache", str(tmp_path / "c"), "--no-progress")
    assert code == 2
    assert_one_line_error(err, "unknown network space 'nosuch'")
    assert not (tmp_path / "x.sqlite").exists()  # refused before anything was measured


def test_calibrations_by_family_map_each_model_by_its_main_family(bundle_dir: str, measured) -> None:
    from nas.latency import Calibration, NetworkLatencyModel

    db, cache = measured
    bundles = NetworkLatencyModel.load([os.path.join(bundle_dir, f"{f}.bundle") for f in ("mbconv", "resv1")])
    r18, mb2 = (cached_decomposition(n, cache) for n in ("torchvision:resnet18", "torchvision:mobilenet_v2"))
    with Store(db, readonly=True) as store:
        raw = RealLatencyModel(bundles.predictors, store, "synthetic-v1")
        cal = RealLatencyModel(bundles.predictors, store, "synthetic-v1", {"resv1": Calibration(1.0, 2.0)})
        assert cal.predict(r18).pred_ms == pytest.approx(1.0 + 2.0 * raw.predict(r18).pred_ms)
        assert cal.predict(mb2).pred_ms == pytest.approx(raw.predict(mb2).pred_ms)  # no mbconv line: raw


def test_a_cached_decomposition_of_an_older_format_is_made_again(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    d = cached_decomposition("torchvision:mobilenet_v3_small", cache)
    (path,) = (os.path.join(cache, f) for f in os.listdir(cache))
    with open(path, encoding="utf-8") as fh:
        old = json.load(fh)
    assert old["format"] == 3 and any(p.get("alternatives") for p in old["parts"])
    # as the first format wrote it: no format, no alternatives, MobileNetV3's mbconvx-only blocks as glue
    old.pop("format")
    for p in old["parts"]:
        p.pop("alternatives", None)
    old["parts"] = [dict(p, kind="glue", op={"type": "Identity"}) if p.get("family") == "mbconvx" else p
                    for p in old["parts"]]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(old, fh)
    again = cached_decomposition("torchvision:mobilenet_v3_small", cache)
    assert again == d and {p.family for p in again.prefer(["mbconvx"]).blocks} == {"mbconvx", "convbn"}
