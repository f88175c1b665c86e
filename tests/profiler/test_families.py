"""Tests for the built-in block families (``mbconv``, ``resv1``, ``resv2``) and the family registry.

The closed-form counts are checked against :func:`profiler.families.module_counts` (forward hooks + torch's
FLOP counter) on the built modules: every sampled and edge config on the meta device (shapes only, so large
blocks are free), and the ones below ``CPU_MACS`` also for real on the CPU.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from profiler.families import (
    BlockFamily,
    Counts,
    FamilyError,
    get_family,
    list_families,
    meta_counts,
    module_counts,
    register_family,
)
from profiler.families import _base as families_base
from profiler.families._layers import ACTIVATION_LIMIT, MACS_LIMIT, conv_out, make_divisible
from profiler.families._modules import Add, Scale
from profiler.families.mbconv import se_width
from profiler.space import Integer, Space, SpaceError

FAMILIES = ("mbconv", "resv1", "resv2")
COUNTED = (*FAMILIES, "mbconvx", "resv1x", "convbn")  # closed-form counts checked against the module (their own
# tests: test_mbconvx)
N_SAMPLED = 25
CPU_MACS = 300_000_000  # run the real CPU forward only below this cost
SEEDS = {"mbconv": 11, "resv1": 12, "resv2": 13, "mbconvx": 14, "resv1x": 15, "convbn": 16}


def _mb(hw: int, cin: int, cout: int, e: int, k: int, s: int, se: bool, act: str) -> dict[str, Any]:
    return {"input_hw": hw, "cin": cin, "cout": cout, "expansion": e, "kernel": k, "stride": s, "se": se,
            "act": act}


def _res(hw: int, cin: int, cout: int, k: int, s: int, variant: str) -> dict[str, Any]:
    return {"input_hw": hw, "cin": cin, "cout": cout, "kernel": k, "stride": s, "variant": variant}


MBCONV_EDGES = [
    _mb(7, 8, 8, 1, 3, 1, False, "relu"),  # smallest
    _mb(7, 1024, 1024, 6, 7, 1, True, "swish"),  # widest
    _mb(224, 16, 16, 4, 7, 1, True, "hswish"),  # activation exactly at the limit
    _mb(224, 64, 24, 1, 5, 2, True, "relu6"),  # expansion 1 with squeeze-excite, 224 px
    _mb(28, 40, 40, 3, 5, 2, False, "relu6"),  # stride 2 with cin == cout: no residual
    _mb(113, 24, 32, 6, 3, 2, True, "swish"),  # odd side, stride 2
    _mb(14, 80, 80, 6, 3, 1, True, "relu"),  # residual + SE with Hardsigmoid
    _mb(10, 8, 8, 1, 7, 2, True, "hswish"),  # smallest SE (squeeze width clamps to 8), 10 -> 5
    _mb(56, 24, 24, 4, 3, 1, False, "swish"),
]
RES_EDGES = [
    _res(7, 16, 16, 3, 1, "basic"),  # smallest
    _res(7, 2048, 2048, 3, 1, "bottleneck"),  # widest, identity shortcut
    _res(7, 1024, 1024, 3, 2, "basic"),  # stride 2 with cin == cout: projection
    _res(224, 16, 64, 3, 1, "bottleneck"),  # 224 px, activation exactly at the limit
    _res(224, 32, 32, 3, 2, "basic"),
    _res(15, 48, 96, 5, 2, "bottleneck"),  # odd side, stride 2
    _res(56, 64, 64, 3, 1, "basic"),  # ResNet-18 stage 1
    _res(9, 512, 256, 7, 1, "basic"),  # stride 1, cin != cout: projection
    _res(28, 256, 256, 5, 1, "bottleneck"),
]


def _mx(hw: int, cin: int, mid: int, cout: int, k: int, s: int, act: str, se: str) -> dict[str, Any]:
    return {"input_hw": hw, "cin": cin, "mid": mid, "cout": cout, "kernel": k, "stride": s, "act": act, "se": se}


MBCONVX_EDGES = [
    _mx(7, 8, 8, 8, 3, 1, "relu", "none"),  # smallest, no expansion convolution
    _mx(14, 80, 184, 80, 3, 1, "hswish", "none"),  # MobileNetV3-Large's expansion 2.3
    _mx(28, 40, 120, 40, 5, 1, "relu", "hsigmoid"),  # MobileNetV3 squeeze-excite
    _mx(112, 32, 32, 16, 3, 1, "swish", "sigmoid"),  # EfficientNet-B0's first block (squeeze 8 = cin / 4)
    _mx(14, 112, 672, 192, 5, 2, "swish", "sigmoid"),
    _mx(7, 640, 3840, 640, 7, 1, "swish", "hsigmoid"),  # EfficientNet-B7 width
    _mx(10, 8, 64, 8, 7, 2, "hswish", "sigmoid"),  # cin / 4 = 2, 10 -> 5
]
RESV1X_EDGES = [
    {"input_hw": 56, "cin": 64, "width": 128, "cout": 256, "kernel": 3, "stride": 1, "groups": 32},  # ResNeXt-50
    {"input_hw": 14, "cin": 1024, "width": 512, "cout": 1024, "kernel": 3, "stride": 1, "groups": 1},  # Wide-50-2
    {"input_hw": 28, "cin": 256, "width": 256, "cout": 512, "kernel": 5, "stride": 2, "groups": 64},
    {"input_hw": 7, "cin": 16, "width": 16, "cout": 16, "kernel": 3, "stride": 1, "groups": 16},  # smallest
]
CONVBN_EDGES = [
    {"input_hw": 224, "cin": 3, "cout": 64, "kernel": 7, "stride": 2, "act": "relu", "pool": True},  # ResNet stem
    {"input_hw": 224, "cin": 3, "cout": 32, "kernel": 3, "stride": 2, "act": "swish", "pool": False},
    {"input_hw": 7, "cin": 320, "cout": 1280, "kernel": 1, "stride": 1, "act": "relu6", "pool": False},  # head
    {"input_hw": 9, "cin": 8, "cout": 8, "kernel": 5, "stride": 2, "act": "none", "pool": True},  # 9 -> 5 -> 3
]
EDGES = {"mbconv": MBCONV_EDGES, "resv1": RES_EDGES, "resv2": RES_EDGES, "mbconvx": MBCONVX_EDGES,
         "resv1x": RESV1X_EDGES, "convbn": CONVBN_EDGES}


def _cases() -> Iterator[Any]:
    for name in COUNTED:
        fam = get_family(name)
        for i, cfg in enumerate(fam.space.sample(N_SAMPLED, method="random", seed=SEEDS[name])):
            yield pytest.param(name, cfg, id=f"{name}-sampled{i}")
        for i, cfg in enumerate(EDGES[name]):
            yield pytest.param(name, cfg, id=f"{name}-edge{i}")


CASES = list(_cases())


def _out_hw(cfg: dict[str, Any]) -> int:
    hw = (cfg["input_hw"] - 1) // cfg["stride"] + 1
    return (hw - 1) // 2 + 1 if cfg.get("pool") else hw


def _measure(fam: BlockFamily, cfg: dict[str, Any]) -> tuple[Counts, tuple[int, ...], nn.Module]:
    """module_counts of the built block, plus the output shape seen by a hook on the block itself."""
    block = fam.build(cfg)
    seen: list[tuple[int, ...]] = []
    handle = block.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    try:
        counts = module_counts(block, fam.input_shape(cfg))
    finally:
        handle.remove()
    assert len(seen) == 1
    return counts, seen[0], block


# -- closed-form counts against the modules --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("name", "cfg"), CASES)
def test_counts_match_module_on_meta(name: str, cfg: dict[str, Any]) -> None:
    fam = get_family(name)
    expected = fam.counts(cfg)
    with torch.device("meta"):
        measured, out_shape, block = _measure(fam, cfg)
    assert all(p.is_meta for p in block.parameters())
    assert measured == expected
    assert measured.work == expected.work  # per-layer kind, MACs and bytes, in forward order
    assert out_shape == (1, cfg["cout"], _out_hw(cfg), _out_hw(cfg))
    assert not block.training


CPU_CASES = [c for c in CASES if get_family(c.values[0]).counts(c.values[1]).macs <= CPU_MACS]


@pytest.mark.parametrize(("name", "cfg"), CPU_CASES)
def test_counts_match_module_on_cpu(name: str, cfg: dict[str, Any]) -> None:
    fam = get_family(name)
    expected = fam.counts(cfg)
    measured, out_shape, block = _measure(fam, cfg)
    assert expected.params == sum(p.numel() for p in block.parameters())
    assert expected.macs == measured.macs
    assert expected.bytes_moved == measured.bytes_moved
    assert expected.layers == measured.layers
    assert out_shape == (1, cfg["cout"], _out_hw(cfg), _out_hw(cfg))


def test_enough_cpu_cases() -> None:
    for name in FAMILIES:
        sampled = [c for c in CPU_CASES if c.values[0] == name and "sampled" in c.id]
        edges = [c for c in CPU_CASES if c.values[0] == name and "edge" in c.id]
        assert len(sampled) >= 15, name
        assert len(edges) >= len(EDGES[name]) - 3, name


@pytest.mark.parametrize("name", FAMILIES)
def test_flop_counter_is_twice_the_macs(name: str) -> None:
    fam = get_family(name)
    for cfg in EDGES[name][:3]:
        counter = FlopCounterMode(display=False)
        with torch.device("meta"), torch.inference_mode(), counter:
            fam.build(cfg)(torch.zeros(fam.input_shape(cfg)))
        assert counter.get_total_flops() == 2 * fam.counts(cfg).macs


@pytest.mark.parametrize("name", FAMILIES)
def test_counts_are_closed_form(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fam = get_family(name)

    def no_build(config: Any) -> nn.Module:
        raise AssertionError("counts() must not build the module")

    monkeypatch.setattr(fam, "build", no_build)
    cfg = EDGES[name][1]
    c = fam.counts(cfg)
    assert isinstance(c, Counts) and c.macs > 0 and c.params > 0 and c.bytes_moved > 0 and c.layers >= 3
    assert all(isinstance(v, int) for v in c.as_dict().values())


def test_hand_computed_counts() -> None:
    # torchvision-style MobileNetV2 block 56px 24 -> 24, expansion 6, 3x3: mid 144.
    c = get_family("mbconv").counts(_mb(56, 24, 24, 6, 3, 1, False, "relu6"))
    assert c.macs == 56 * 56 * (24 * 144 + 144 * 9 + 144 * 24)
    assert c.params == 24 * 144 + 2 * 144 + 144 * 9 + 2 * 144 + 144 * 24 + 2 * 24
    assert c.layers == 3
    # ResNet-50 first bottleneck: 56px, 64 -> 256, projection shortcut.
    cfg = _res(56, 64, 256, 3, 1, "bottleneck")
    v1, v2 = get_family("resv1").counts(cfg), get_family("resv2").counts(cfg)
    convs = 64 * 64 + 64 * 64 * 9 + 64 * 256 + 64 * 256
    assert v1.macs == v2.macs == 56 * 56 * convs
    assert v1.params == convs + 2 * (64 + 64 + 256 + 256)
    assert v2.params == convs + 2 * (64 + 64 + 64)  # pre-activation BN on cin, no BN after the last conv
    assert v1.layers == v2.layers == 4


def test_helpers() -> None:
    assert [conv_out(hw, k, s) for hw, k, s in ((7, 3, 2), (8, 7, 2), (224, 5, 1), (113, 3, 2))] == [4, 4, 224, 57]
    assert se_width(8) == 8 and se_width(64) == 16 and se_width(40) == 16 and se_width(144) == 40
    assert make_divisible(18) == 24  # rounding 18 down to 16 would lose more than 10%
    assert ACTIVATION_LIMIT == 3_211_264 and MACS_LIMIT == 2_000_000_000


# -- block structure ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize(("cin", "cout", "stride"), [(32, 32, 1), (32, 32, 2), (32, 64, 1), (64, 32, 2)])
def test_identity_shortcut_only_when_shapes_match(name: str, cin: int, cout: int, stride: int) -> None:
    fam = get_family(name)
    identity = stride == 1 and cin == cout
    if name == "mbconv":
        block = fam.build(_mb(16, cin, cout, 3, 3, stride, True, "relu"))
        assert (block.add is not None) == identity
        assert any(isinstance(m, Add) for m in block.modules()) == identity
    else:
        block = fam.build(_res(16, cin, cout, 3, stride, "basic"))
        assert (block.shortcut is None) == identity
        assert sum(isinstance(m, Add) for m in block.modules()) == 1
        if not identity:
            conv = block.shortcut if name == "resv2" else block.shortcut[0]
            assert isinstance(conv, nn.Conv2d)
            assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (
                cin, cout, (1, 1), (stride, stride))
            assert conv.bias is None
    assert not any(isinstance(m, nn.Identity) for m in block.modules())


def _randomize_bn(block: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@torch.no_grad()
def test_residual_semantics() -> None:
    x = torch.randn(1, 32, 9, 9, generator=torch.Generator().manual_seed(1))
    # mbconv identity: zero the projection BN -> the block returns its input.
    block = get_family("mbconv").build(_mb(9, 32, 32, 4, 5, 1, True, "swish"))
    block.project[1].weight.zero_()
    block.project[1].bias.zero_()
    torch.testing.assert_close(block(x), x)
    # resv1 identity: zero the last BN -> relu(x).
    block = get_family("resv1").build(_res(9, 32, 32, 3, 1, "bottleneck"))
    block.residual[-1].weight.zero_()
    block.residual[-1].bias.zero_()
    torch.testing.assert_close(block(x), torch.relu(x))
    # resv2 identity takes the raw input: zero the last conv -> x.
    block = get_family("resv2").build(_res(9, 32, 32, 3, 1, "basic"))
    _randomize_bn(block)
    block.residual[-1].weight.zero_()
    torch.testing.assert_close(block(x), x)
    # resv2 projection takes the pre-activated input.
    block = get_family("resv2").build(_res(9, 32, 64, 3, 2, "bottleneck"))
    _randomize_bn(block)
    block.residual[-1].weight.zero_()
    torch.testing.assert_close(block(x), block.shortcut(block.preact(x)))
    # resv1 projection: relu(BN(conv1x1 stride 2 (x))).
    block = get_family("resv1").build(_res(9, 32, 64, 3, 2, "basic"))
    _randomize_bn(block)
    block.residual[-1].weight.zero_()
    block.residual[-1].bias.zero_()
    torch.testing.assert_close(block(x), torch.relu(block.shortcut(x)))


def test_mbconv_structure() -> None:
    fam = get_family("mbconv")
    block = fam.build(_mb(14, 16, 24, 1, 7, 2, True, "swish"))
    assert block.expand is None
    dw = block.depthwise[0]
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.kernel_size, dw.stride, dw.padding) == (
        16, 16, 16, (7, 7), (2, 2), (3, 3))
    assert isinstance(block.se.gate, nn.Sigmoid) and isinstance(block.se.scale, Scale)
    assert block.se.reduce.out_channels == 8 and block.se.reduce.bias is not None
    acts = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "swish": nn.SiLU}
    for act, cls in acts.items():
        block = fam.build(_mb(14, 16, 16, 6, 3, 1, True, act))
        assert isinstance(block.expand[2], cls) and isinstance(block.depthwise[2], cls)
        assert type(block.se.gate) is (nn.Sigmoid if act == "swish" else nn.Hardsigmoid)
        assert block.se.reduce.in_channels == 96 and block.se.reduce.out_channels == 24
        assert len(block.project) == 2  # no activation after the projection
    assert fam.build(_mb(14, 16, 16, 6, 3, 1, False, "relu")).se is None


@pytest.mark.parametrize("name", FAMILIES)
def test_config_to_block_is_one_to_one(name: str) -> None:
    """Different configs give different (input shape, module structure) pairs."""
    fam = get_family(name)

    def signature(cfg: dict[str, Any]) -> tuple[Any, ...]:
        with torch.device("meta"):
            block = fam.build(cfg)
        parts: list[Any] = [fam.input_shape(cfg)]
        for mname, m in block.named_modules():
            conv = (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.groups) if isinstance(
                m, nn.Conv2d) else ()
            parts.append((mname, type(m).__name__, conv))
        return tuple(parts)

    configs = fam.space.sample(200, seed=5) + EDGES[name]
    assert len({signature(c) for c in configs}) == len({fam.key(c) for c in configs})


# -- validation ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_invalid_configs_raise_naming_the_field(name: str) -> None:
    fam = get_family(name)
    good = dict(EDGES[name][0])
    bad_cases = [
        (dict(good, foo=1), "foo"),
        (dict(good, kernel=4), "kernel"),
        (dict(good, cin=12), "cin"),
        (dict(good, stride=3), "stride"),
        ({k: v for k, v in good.items() if k != "cout"}, "cout"),
    ]
    if name == "mbconv":
        bad_cases += [(dict(good, act="gelu"), "act"), (dict(good, se=1), "se"), (dict(good, expansion=2),
                                                                                    "expansion")]
        bad_cases += [(_mb(224, 64, 64, 6, 3, 1, False, "relu"), "activation_size"),
                      (_mb(14, 1024, 1024, 6, 7, 1, True, "relu"), "macs")]
    else:
        bad_cases += [(dict(good, variant="wide"), "variant"), (dict(good, cin=4096), "cin")]
        bad_cases += [(_res(224, 128, 128, 3, 2, "bottleneck"), "activation_size"),
                      (_res(56, 256, 256, 7, 1, "basic"), "macs"),
                      (_res(7, 2048, 2048, 3, 1, "basic"), "macs")]
    for cfg, field in bad_cases:
        for call in (fam.validate, fam.build, fam.counts, fam.input_shape):
            with pytest.raises(SpaceError, match=field):
                call(cfg)


@pytest.mark.parametrize("name", FAMILIES)
def test_validation_canonicalises(name: str) -> None:
    fam = get_family(name)
    cfg = EDGES[name][0]
    loose = {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in cfg.items()}
    assert fam.validate(dict(reversed(list(loose.items())))) == cfg
    assert fam.key(loose) == fam.key(cfg)
    assert fam.counts(loose) == fam.counts(cfg)


# -- registry ---------------------------------------------------------------------------------------------------
def test_registry_lookup() -> None:
    assert set(FAMILIES) <= set(list_families())
    fam = get_family("mbconv")
    assert fam.name == "mbconv" and isinstance(fam.space, Space)
    with pytest.raises(FamilyError, match="nope"):
        get_family("nope")
    with pytest.raises(FamilyError, match="mbconv"):
        register_family(type(fam)())


@pytest.mark.parametrize("name", FAMILIES)
def test_families_pickle(name: str) -> None:
    fam = get_family(name)
    assert pickle.loads(pickle.dumps(fam)) is fam
    space = pickle.loads(pickle.dumps(fam.space))
    assert space.hash() == fam.space.hash()
    assert space.is_valid(EDGES[name][0]) and not space.is_valid(dict(EDGES[name][0], kernel=4))
    block = pickle.loads(pickle.dumps(fam.build(EDGES[name][0])))
    assert sum(p.numel() for p in block.parameters()) == fam.counts(EDGES[name][0]).params


class TinyFamily(BlockFamily):
    """A user family without closed-form counts: a 3x3 conv and a ReLU."""

    name = "test_tiny_conv"
    space = Space([Integer("hw", 4, 16), Integer("channels", 1, 8)])

    def build(self, config: Any) -> nn.Module:
        cfg = self.validate(config)
        c = cfg["channels"]
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU()).eval()

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        cfg = self.validate(config)
        return (batch_size, cfg["channels"], cfg["hw"], cfg["hw"])


@pytest.fixture
def tiny_family() -> Iterator[TinyFamily]:
    fam = TinyFamily()
    try:
        yield register_family(fam)
    finally:
        families_base._REGISTRY.pop(TinyFamily.name, None)


def test_user_family(tiny_family: TinyFamily) -> None:
    assert get_family("test_tiny_conv") is tiny_family
    assert "test_tiny_conv" in list_families()
    assert register_family(tiny_family) is tiny_family  # re-registering the same instance is a no-op
    c = tiny_family.counts({"hw": 8, "channels": 4})  # falls back to module_counts
    n = 8 * 8 * 4
    assert c == Counts(macs=n * 4 * 9, params=4 * 4 * 9 + 4, bytes_moved=4 * (n + n + 148 + n + n), layers=1)
    with pytest.raises(FamilyError, match="test_tiny_conv"):
        register_family(TinyFamily())
    assert register_family(TinyFamily(), replace=True) is not tiny_family
    with pytest.raises(SpaceError, match="channels"):
        tiny_family.counts({"hw": 8, "channels": 9})


# -- coverage of the spaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_spaces_reach_the_promised_ranges(name: str) -> None:
    fam = get_family(name)
    configs = fam.space.sample(2000, method="random", seed=0)
    hws = [c["input_hw"] for c in configs]
    assert min(hws) <= 10 and max(hws) >= 200
    assert max(max(c["cin"], c["cout"]) for c in configs) >= 1024
    for dim in fam.space.dimensions:
        if dim.kind in ("choice", "categorical", "boolean"):
            assert {c[dim.name] for c in configs} == set(dim.values()), dim.name
    # Large blocks are sampled too, and every sample obeys the limits.
    macs = [fam.counts(c).macs for c in configs]
    assert max(macs) > MACS_LIMIT / 4 and max(macs) <= MACS_LIMIT


@pytest.mark.parametrize("name", FAMILIES)
def test_spaces_hold_typical_blocks(name: str) -> None:
    fam = get_family(name)
    for c in (16, 32, 64):  # full-resolution stems
        if name == "mbconv":
            assert fam.space.is_valid(_mb(224, c, c, 1, 3, 1, True, "relu"))
            assert fam.space.is_valid(_mb(224, c, 24, 1, 3, 2, False, "hswish"))
        else:
            assert fam.space.is_valid(_res(224, c, c, 3, 2, "basic"))
            assert fam.space.is_valid(_res(224, c, 64, 3, 1, "bottleneck"))
    if name == "mbconv":  # 7 px with 1024 channels
        assert fam.space.is_valid(_mb(7, 1024, 1024, 6, 5, 1, True, "swish"))
        assert fam.space.is_valid(_mb(7, 160, 1024, 6, 3, 1, False, "relu"))
    else:
        assert fam.space.is_valid(_res(7, 2048, 2048, 3, 1, "bottleneck"))
        assert fam.space.is_valid(_res(7, 1024, 2048, 3, 1, "bottleneck"))
        assert fam.space.is_valid(_res(7, 1024, 1024, 3, 1, "basic"))


# -- counts of plug-in families: traced on the meta device, cached ----------------------------------------------
class TinyAttention(BlockFamily):
    """A user family with a matmul outside any conv/linear module (torch's FLOP counter sees it, hooks do not)."""

    name = "test_tiny_attention"
    space = Space([Integer("tokens", 2, 64), Integer("dim", 4, 64, step=4)])

    class Block(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            return self.norm(torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v)

    def build(self, config: Any) -> nn.Module:
        return self.Block(self.validate(config)["dim"]).eval()

    def input_shape(self, config: Any, batch_size: int = 1) -> tuple[int, ...]:
        cfg = self.validate(config)
        return (batch_size, cfg["tokens"], cfg["dim"])


class DataDependent(TinyFamily):
    """A block whose forward reads a value (cannot run on meta tensors): counted on the real module instead."""

    name = "test_data_dependent"

    def build(self, config: Any) -> nn.Module:
        class Gate(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x if float(x.sum()) >= 0 else -x

        return nn.Sequential(super().build(config), Gate()).eval()


class CountingBuilds(TinyFamily):
    """Records the device of every module it builds."""

    name = "test_counting_builds"

    def __init__(self) -> None:
        self.built: list[str] = []

    def build(self, config: Any) -> nn.Module:
        m = super().build(config)
        self.built.append(next(m.parameters()).device.type)
        return m


def _real_counts(fam: BlockFamily, cfg: dict[str, Any]) -> Counts:
    return module_counts(fam.build(cfg), fam.input_shape(cfg))


PLUGIN_CASES = [pytest.param(name, cfg, id=c.id) for c in CPU_CASES[::6] for name, cfg in [c.values]]


@pytest.mark.parametrize(("name", "cfg"), PLUGIN_CASES)
def test_meta_counts_equal_real_module_counts_for_builtin_blocks(name: str, cfg: dict[str, Any]) -> None:
    fam = get_family(name)
    traced, real = meta_counts(fam, cfg), _real_counts(fam, cfg)
    assert traced == real == fam.counts(cfg)  # traced = real module = closed form
    assert traced.work == real.work


@pytest.mark.parametrize("family", [TinyFamily(), TinyAttention(), DataDependent()], ids=lambda f: f.name)
def test_plug_in_counts_equal_real_module_counts(family: BlockFamily) -> None:
    for cfg in family.space.sample(4, seed=1):
        c = family.counts(cfg)
        assert c == _real_counts(family, family.validate(cfg)) and c.work == _real_counts(family, cfg).work
        assert c.macs > 0 and c.params > 0
    if isinstance(family, TinyAttention):  # the attention matmuls are counted: 2 x tokens^2 x dim on top of qkv
        cfg = {"tokens": 10, "dim": 8}
        assert family.counts(cfg).macs == 10 * 8 * 24 + 2 * 10 * 10 * 8


def test_plug_in_counts_are_traced_on_meta_and_cached() -> None:
    fam = CountingBuilds()
    cfg = {"hw": 8, "channels": 4}
    first = fam.counts(cfg)
    assert fam.built == ["meta"]  # nothing allocated
    assert fam.counts({"channels": 4.0, "hw": 8}) is first and fam.counts_of_valid(fam.validate(cfg)) is first
    assert fam.built == ["meta"]  # the same key: from the cache
    assert CountingBuilds().counts(cfg) == first  # another instance has its own cache, same numbers


def test_trace_seconds_is_what_tracing_cost_and_none_for_closed_form_counts() -> None:
    from profiler.families import trace_seconds

    fam = CountingBuilds()
    assert trace_seconds(get_family("mbconv")) is None and trace_seconds(object()) is None
    assert math.isnan(trace_seconds(fam))  # traced counts, nothing traced yet
    fam.counts({"hw": 8, "channels": 4})
    fam.counts({"hw": 8, "channels": 4})  # from the cache: not a trace
    first = trace_seconds(fam)
    assert 0 < first < 60
    fam.counts({"hw": 9, "channels": 4})
    assert families_base._TRACED[fam][0] == 2 and trace_seconds(fam) > 0


def test_the_counts_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(families_base, "COUNTS_CACHE_SIZE", 3)
    fam = CountingBuilds()
    cfgs = [{"hw": hw, "channels": 2} for hw in range(4, 9)]
    for cfg in cfgs:
        fam.counts(cfg)
    assert len(families_base._CACHES[fam]) == 3 and len(fam.built) == 5
    fam.counts(cfgs[-1])  # recent: still cached
    fam.counts(cfgs[0])  # dropped first: traced again
    assert len(fam.built) == 6


def test_a_block_that_cannot_run_on_meta_is_counted_for_real() -> None:
    fam = DataDependent()
    cfg = {"hw": 8, "channels": 4}
    with pytest.raises((RuntimeError, NotImplementedError)), torch.device("meta"):
        module_counts(fam.build(cfg), fam.input_shape(cfg))  # its forward reads a value: not on meta
    c, tiny = fam.counts(cfg), TinyFamily().counts(cfg)
    assert (c.macs, c.params, c.layers) == (tiny.macs, tiny.params, tiny.layers)  # the gate: elementwise only
    assert c.work[-1] == ("elementwise", 0, 4 * 2 * 8 * 8 * 4) and c == _real_counts(fam, cfg)
