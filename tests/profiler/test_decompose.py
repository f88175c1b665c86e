"""From a torch model to blocks (``profiler.decompose``): each supported torchvision and timm model decomposes exactly
(the blocks rebuilt from their configurations reproduce the modules' parameter counts and output shapes, and
blocks + glue hold every parameter of the model), a near miss is glue (never an approximate block), glue
accounting, and bad names."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from profiler.decompose import FORMAT, Decomposition, DecompositionError, from_torch
from profiler.families import get_family
from profiler.glue import GLUE, op_spec
from profiler.zoo import ModelNameError, load_model

try:
    from profiler.zoo import _timm

    _timm()
except ModelNameError:  # pragma: no cover - the test extra installs torchvision and timm
    pytest.skip("torchvision and timm are not installed", allow_module_level=True)

# model -> (blocks per family): every supported model of these families decomposes into exactly these
SUPPORTED = {
    "torchvision:resnet18": {"resv1": 8}, "torchvision:resnet34": {"resv1": 16},
    "torchvision:resnet50": {"resv1": 16}, "torchvision:resnet101": {"resv1": 33},
    "torchvision:resnet152": {"resv1": 50}, "torchvision:mobilenet_v2": {"mbconv": 17},
    "torchvision:mnasnet0_5": {"mbconv": 17}, "torchvision:mnasnet0_75": {"mbconv": 17},
    "torchvision:mnasnet1_0": {"mbconv": 17}, "torchvision:mnasnet1_3": {"mbconv": 17},
    "timm:resnet18": {"resv1": 8}, "timm:resnet26": {"resv1": 8}, "timm:resnet34": {"resv1": 16},
    "timm:resnet50": {"resv1": 16}, "timm:mobilenetv2_050": {"mbconv": 17}, "timm:mobilenetv2_100": {"mbconv": 17},
    "timm:mobilenetv2_140": {"mbconv": 17}, "timm:mnasnet_100": {"mbconv": 17}, "timm:spnasnet_100": {"mbconv": 21},
    # MobileNetV3: the blocks of integer expansion are mbconv (with mbconvx as their alternative), 80 -> 200 / 184
    # are mbconvx only; EfficientNet's squeeze-excite is mbconvx only; ResNeXt and Wide ResNet are resv1x
    "torchvision:mobilenet_v3_large": {"mbconv": 12, "mbconvx": 3},
    "torchvision:mobilenet_v3_small": {"mbconv": 9, "mbconvx": 2},
    "torchvision:efficientnet_b0": {"mbconvx": 16}, "torchvision:efficientnet_b1": {"mbconvx": 23},
    "torchvision:resnext50_32x4d": {"resv1x": 16}, "torchvision:wide_resnet50_2": {"resv1x": 16},
    "timm:mobilenetv3_large_100": {"mbconv": 12, "mbconvx": 3}, "timm:mobilenetv3_small_100": {"mbconv": 9,
                                                                                                "mbconvx": 2},
    "timm:efficientnet_b0": {"mbconvx": 16}, "timm:efficientnet_lite0": {"mbconv": 16},
    "timm:semnasnet_100": {"mbconv": 8, "mbconvx": 8}, "timm:tinynet_a": {"mbconvx": 19},
    "timm:resnext50_32x4d": {"resv1x": 16},
}
# and the stem (ResNets: conv, batch norm, ReLU, max pool) as one convbn block; the others' head convolution too
for _name, _blocks in SUPPORTED.items():
    _blocks["convbn"] = 1 if "res" in _name else 2
FAST = ("torchvision:resnet18", "torchvision:mobilenet_v2", "timm:mnasnet_100", "torchvision:mobilenet_v3_small",
        "timm:efficientnet_b0")


def _check_exact(name: str, expected: dict[str, int]) -> Decomposition:
    model = load_model(name)
    d = from_torch(model, name=name)
    assert {f: sum(p.family == f for p in d.blocks) for f in d.families()} == expected
    # blocks + glue hold every parameter of the model, each once
    assert sum(p.params for p in d.parts) == d.params == sum(p.numel() for p in model.parameters())
    for p in d.blocks:  # the block, and every alternative family's block, is the module's (or the run of layers')
        paths = p.path.split("+")
        module = model.get_submodule(p.path) if len(paths) == 1 else nn.Sequential(
            *(model.get_submodule(q) for q in paths if not q.endswith(".act")))  # timm's BatchNormAct2d holds its act
        for fname, cfg in ((p.family, p.config), *p.alternatives):
            fam = get_family(fname)
            block = fam.build(cfg)
            assert sum(q.numel() for q in block.parameters()) == sum(q.numel() for q in module.parameters()) \
                == p.params
            x = torch.randn(fam.input_shape(cfg))
            with torch.no_grad():
                assert module(x).shape == block(x).shape
    # consecutive blocks chain: each block reads what the one before it wrote
    for a, b in zip(d.blocks, d.blocks[1:], strict=False):
        if a.family == b.family == "mbconv" and a.config["cout"] == b.config["cin"]:
            assert b.config["input_hw"] == -(-a.config["input_hw"] // a.config["stride"])
    assert 0.7 < d.block_macs_share <= 1.0
    return d


@pytest.mark.parametrize("name", FAST)
def test_a_supported_model_decomposes_exactly(name: str) -> None:
    _check_exact(name, SUPPORTED[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SUPPORTED if n not in FAST])
def test_every_supported_model_decomposes_exactly(name: str) -> None:
    _check_exact(name, SUPPORTED[name])


def test_a_near_miss_is_glue_not_an_approximate_block() -> None:
    # torchvision's MobileNetV2 block with a 5x5 depthwise padded by 1 (not k // 2) is no mbconv block
    fam = get_family("mbconv")
    cfg = {"input_hw": 16, "cin": 16, "cout": 24, "expansion": 6, "kernel": 5, "stride": 1, "se": False,
           "act": "relu6"}
    good = fam.build(cfg)
    bad = fam.build(cfg)
    bad.depthwise[0].padding = (1, 1)
    bad.project[0] = nn.Conv2d(96, 24, 1, bias=False)
    for model, blocks in ((nn.Sequential(good), 1), (nn.Sequential(bad), 0)):
        d = from_torch(model, (1, 16, 16, 16))
        assert len([p for p in d.blocks if p.family != "convbn"]) == blocks
        # of the near miss, only what is exact is a block: its 1 x 1 convolutions with their norms (convbn)
        assert all(p.family == "convbn" and p.config["kernel"] == 1 for p in d.blocks) or blocks
        assert sum(p.params for p in d.parts) == sum(p.numel() for p in model.parameters())
    # a wide ResNet's bottleneck (width cout / 2, not cout / 4) is not taken for a resv1 block (resv1x states it)
    wide = load_model("torchvision:wide_resnet50_2")  # built once: decomposing leaves the model as it was
    d = from_torch(wide, name="wide", families=["resv1"])
    assert d.blocks == [] and d.block_macs_share == 0.0
    assert {p.family for p in from_torch(wide).blocks} == {"resv1x", "convbn"}


def test_glue_is_every_other_layer_and_each_rebuilds_alone() -> None:
    model = load_model("torchvision:resnet18")
    d = from_torch(model, name="r18")
    assert [p.op["type"] for p in d.glue] == ["AdaptiveAvgPool2d", "Linear"]
    for p in d.glue:
        layer = GLUE.build(p.op)
        assert sum(q.numel() for q in layer.parameters()) == p.params
        assert GLUE.key(p.op) == GLUE.key(dict(p.op))
    # the stem, four children of the model itself, is one run of layers that checks as a convbn block
    stem = d.parts[0]
    assert (stem.kind, stem.path, stem.family) == ("block", "conv1+bn1+relu+maxpool", "convbn")
    assert stem.config == {"input_hw": 224, "cin": 3, "cout": 64, "kernel": 7, "stride": 2, "act": "relu",
                           "pool": True}
    assert stem.macs == 112 * 112 * 64 * 3 * 49
    again = Decomposition.from_json(d.to_json())
    assert again == d and again.describe().startswith("r18: 9 blocks (convbn x1, resv1 x8), 2 glue layers")
    # without convbn, the stem is glue: one spec per layer, each rebuilding alone
    bare = from_torch(model, name="r18", families=["resv1"])
    assert [p.op["type"] for p in bare.glue] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d",
                                                 "Linear"]
    assert bare.glue[0].op["input"] == [1, 3, 224, 224]


def test_a_layer_that_cannot_be_rebuilt_is_named() -> None:
    spec = op_spec(nn.LSTM(4, 4), (1, 4))
    with pytest.raises(ValueError, match="glue layer 'LSTM' cannot be rebuilt alone"):
        GLUE.validate(spec)


@pytest.mark.parametrize(("name", "needle"), [
    ("resnet50", "expected torchvision:NAME or timm:NAME"), ("keras:resnet50", "expected torchvision:NAME"),
    ("torchvision:", "expected torchvision:NAME"), ("torchvision:resnet5000", "torchvision has no model 'resnet5000'"),
    ("timm:nosuchnet", "timm has no model 'nosuchnet'"), ("timm:../x", "expected torchvision:NAME"),
])
def test_bad_model_names(name: str, needle: str) -> None:
    with pytest.raises(ModelNameError, match=needle.replace("(", r"\(")) as e:
        load_model(name)
    assert len(str(e.value).splitlines()) == 1


def test_a_decomposition_that_is_not_one_is_refused() -> None:
    with pytest.raises(DecompositionError, match="not a decomposition"):
        Decomposition.from_json('{"name": "x"}')
    with pytest.raises(DecompositionError, match="invalid JSON"):
        Decomposition.from_json("{")


@pytest.mark.parametrize("space", ["stacked-resv1", "stacked-mbconv", "mbv2", "mbv3", "resnext"])
def test_our_own_networks_decompose_back_into_their_blocks(space: str) -> None:
    from nas.spaces import get_space

    for net in get_space(space).sample(2, seed=3):
        d = from_torch(net.build(), net.input_shape()).prefer(net.families())
        assert [(p.family, p.config) for p in d.blocks if p.family != "convbn"] == [
            (b.family, dict(b.config)) for b in net.blocks]
        # the stem is a convbn block (a stride-4 one, ResNet space's, is glue: convbn strides are 1 and 2), and so
        # is the head's convolution where there is one
        stem = net.stem.stride <= 2
        if stem:
            assert (d.blocks[0].family, d.blocks[0].config["cout"]) == ("convbn", net.stem.cout)
        assert sum(p.family == "convbn" for p in d.blocks) == stem + bool(net.head.conv)


def test_a_model_is_predicted_by_as_few_given_families_as_match() -> None:
    d = from_torch(load_model("torchvision:mobilenet_v3_small"), name="v3")
    assert {p.family for p in d.prefer(["mbconv"]).blocks} == {"mbconv", "mbconvx", "convbn"}  # 2 only mbconvx
    both = d.prefer(["mbconv", "mbconvx"])
    assert {p.family for p in both.blocks} == {"mbconvx", "convbn"}  # all its blocks in one family, not split
    assert [p.path for p in both.blocks] == [p.path for p in d.blocks] and both.params == d.params
    # a block keeps what it was as an alternative; the JSON holds the alternatives
    moved = next(p for p, q in zip(both.blocks, d.blocks, strict=True) if q.family == "mbconv")
    assert ("mbconv", next(q for q in d.blocks if q.path == moved.path).config) in moved.alternatives
    again = Decomposition.from_json(both.to_json())
    assert again == both and f'"format": {FORMAT}' in both.to_json()
    # with only an mbconv bundle, MobileNetV2 stays as it was; with only an mbconvx one, it is all mbconvx
    v2 = from_torch(load_model("torchvision:mobilenet_v2"), name="v2")
    assert v2.prefer(["mbconv"]) == v2
    assert [p.config["mid"] for p in v2.prefer(["mbconvx"]).blocks[1:4]] == [32, 96, 144]
