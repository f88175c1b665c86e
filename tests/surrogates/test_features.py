"""Feature encoders: columns per dimension kind, analytic features, tabular families, specs and versions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.families import get_family
from profiler.space import Boolean, Categorical, Choice, Integer, Real, Space, SpaceError
from profiler.tabular import TabularFamily
from surrogates import ENCODER_VERSION, EncoderError, FeatureEncoder


class _Toy:
    """A minimal family without counts (like a tabular one)."""

    name = "toy"
    space = Space([Integer("c", 8, 512, step=8), Integer("k", 1, 3), Real("r", 0.5, 2.0), Real("g", 0.01, 1, log=True),
                   Choice("ks", (3, 5, 7)), Choice("sz", ("s", "m", "l")), Categorical("act", ("relu", "hswish")),
                   Boolean("se")])

    def validate(self, cfg):
        return self.space.validate(cfg)


CFG = {"c": 64, "k": 2, "r": 1.0, "g": 0.1, "ks": 5, "sz": "l", "act": "hswish", "se": True}


def test_columns_follow_dimension_kinds() -> None:
    enc = FeatureEncoder(_Toy())
    assert not enc.analytic
    assert enc.feature_names == ["log_c", "k", "r", "log_g", "ks", "sz", "act=relu", "act=hswish", "se"]
    x = enc.transform([CFG])[0]
    expected = [math.log(64), 2, 1.0, math.log(0.1), 5, 2, 0, 1, 1]
    np.testing.assert_allclose(x, expected)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(SpaceError, match="act"):
        FeatureEncoder(_Toy()).transform([{**CFG, "act": "gelu"}])


@pytest.mark.parametrize("family", ["mbconv", "resv1", "resv2"])
def test_block_families_get_analytic_features(family: str) -> None:
    fam = get_family(family)
    enc = FeatureEncoder(fam)
    cfgs = fam.space.sample(20, seed=3)
    X = enc.transform(cfgs)
    assert X.shape == (20, len(enc.feature_names)) and np.isfinite(X).all()
    i = enc.feature_names.index("log_macs")
    for row, cfg in zip(X, cfgs, strict=True):
        c = fam.counts(cfg)
        assert row[i] == pytest.approx(math.log1p(c.macs))
        assert row[enc.feature_names.index("layers")] == c.layers
        assert row[enc.feature_names.index("log_intensity")] == pytest.approx(
            math.log1p(c.macs) - math.log1p(c.bytes_moved))


def test_analytic_can_be_switched_off_but_not_forced() -> None:
    assert "log_macs" not in FeatureEncoder(get_family("mbconv"), analytic=False).feature_names
    with pytest.raises(EncoderError, match="no analytic counts"):
        FeatureEncoder(_Toy(), analytic=True)
    with pytest.raises(EncoderError, match="analytic='yes'"):
        FeatureEncoder(_Toy(), analytic="yes")


def test_tabular_family_encodes_text_rows() -> None:
    rows = [{"hw": "112", "cin": "16", "act": "relu", "ms": "0.5"}, {"hw": "7", "cin": "320", "act": "hswish",
                                                                  "ms": "0.9"}]
    fam = TabularFamily.from_rows("t", rows, params=["hw", "cin", "act"])
    enc = FeatureEncoder(fam)
    X = enc.transform([{k: r[k] for k in ("hw", "cin", "act")} for r in rows])
    assert enc.feature_names == ["log_hw", "log_cin", "act=hswish", "act=relu"]
    np.testing.assert_allclose(X[0], [math.log(112), math.log(16), 0, 1])


def test_spec_round_trip_and_version_check() -> None:
    fam = get_family("mbconv")
    enc = FeatureEncoder(fam)
    spec = enc.spec()
    assert spec["version"] == ENCODER_VERSION and spec["space_hash"] == fam.space.hash()
    again = FeatureEncoder.from_spec(fam, spec)
    cfgs = fam.space.sample(5, seed=0)
    np.testing.assert_array_equal(again.transform(cfgs), enc.transform(cfgs))
    with pytest.raises(EncoderError, match="version 99"):
        FeatureEncoder.from_spec(fam, {**spec, "version": 99})
    with pytest.raises(EncoderError, match="differs"):
        FeatureEncoder.from_spec(get_family("resv1"), spec)


def test_shape_features_weight_each_convolution_by_its_work() -> None:
    from surrogates.features import ANALYTIC_FEATURES, SHAPE_FEATURES

    fam = get_family("mbconv")
    cfg = {"input_hw": 46, "cin": 8, "cout": 288, "expansion": 4, "kernel": 3, "stride": 2, "se": False,
           "act": "relu6"}
    enc = FeatureEncoder(fam)
    assert enc.feature_names[-len(SHAPE_FEATURES):] == list(SHAPE_FEATURES)
    f = dict(zip(SHAPE_FEATURES, enc.transform([cfg])[0, -len(SHAPE_FEATURES):], strict=True))
    # dense: expand 8 -> 32 at 46 x 46 (541,696 MACs), project 32 -> 288 at 23 x 23 (4,875,264 MACs)
    w1, w2 = 541_696, 4_875_264
    assert f["conv_align_cin"] == pytest.approx((3 * w1 + 5 * w2) / (w1 + w2))  # 8 = 2**3, 32 = 2**5
    assert f["conv_align_cout"] == pytest.approx(5.0)  # 32 and 288 = 9 * 2**5
    assert f["conv_align_hw"] == pytest.approx((1 * w1 + 0 * w2) / (w1 + w2))  # 46 = 23 * 2, 23 odd
    assert f["conv_log_hw"] == pytest.approx((math.log(46) * w1 + math.log(23) * w2) / (w1 + w2))
    # depthwise: one 3 x 3 on 32 channels, output 23 x 23
    assert (f["dw_align_cin"], f["dw_align_hw"], f["dw_log_cout"]) == (5.0, 0.0, pytest.approx(math.log(32)))
    # alignment is counted up to 64; a family without shapes (counted by tracing) gets zeros
    big = enc.transform([{**cfg, "cin": 512, "cout": 1024, "expansion": 1}])[0, -len(SHAPE_FEATURES):]
    assert big[1] == 6.0
    assert len(FeatureEncoder(fam, version=1).feature_names) == len(enc.feature_names) - len(SHAPE_FEATURES)
    assert FeatureEncoder(fam, version=1).feature_names[-1] == ANALYTIC_FEATURES[-1]


def test_version_1_specs_still_load_and_encode_as_they_did() -> None:
    fam = get_family("resv1")
    old = FeatureEncoder(fam, version=1)
    again = FeatureEncoder.from_spec(fam, old.spec())
    assert again.version == 1 and again.feature_names == old.feature_names
    cfgs = fam.space.sample(4, seed=2)
    new = FeatureEncoder(fam).transform(cfgs)
    np.testing.assert_array_equal(again.transform(cfgs), new[:, :len(old.feature_names)])
    with pytest.raises(EncoderError, match="version 3 is not supported"):
        FeatureEncoder(fam, version=3)
