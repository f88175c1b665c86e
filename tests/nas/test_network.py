from __future__ import annotations

import json

import pytest
import torch

from nas.network import NETWORK, Block, Head, Network, NetworkError, Stem, block_io
from profiler.families import get_family

MB = {"input_hw": 32, "cin": 16, "cout": 24, "expansion": 4, "kernel": 3, "stride": 2, "se": False, "act": "relu"}
MB2 = {"input_hw": 16, "cin": 24, "cout": 24, "expansion": 6, "kernel": 5, "stride": 1, "se": True, "act": "hswish"}


def net(**kw) -> Network:
    d = {"input_hw": 32, "blocks": [Block("mbconv", MB), Block("mbconv", MB2)], "stem": Stem(cout=16)}
    d.update(kw)
    return Network(**d)


def test_json_roundtrip_and_identity_ignores_space() -> None:
    n = net(space="stacked-mbconv")
    back = Network.from_json(n.to_json())
    assert back == n and back.key == n.key and back.space == "stacked-mbconv"
    assert net().key == n.key  # provenance is not identity
    assert json.loads(n.to_json())["blocks"][1]["config"]["kernel"] == 5


def test_build_runs_and_shapes() -> None:
    n = net(head=Head(classes=7, conv=32))
    assert n.output_shape() == (24, 16)
    with torch.inference_mode():
        out = n.build()(n.make_input(batch_size=2))
    assert tuple(out.shape) == (2, 7)
    # the stem, the blocks and the head are all in the module
    assert sum(p.numel() for p in n.build().parameters()) > sum(
        p.numel() for c in (MB, MB2) for p in get_family("mbconv").build(c).parameters())


@pytest.mark.parametrize("bad, message", [
    ({"blocks": [Block("mbconv", dict(MB, cin=32))]}, "block 0 (mbconv) takes 32 channels at 32x32 but the stem "
                                                      "gives 16 channels at 32x32"),
    ({"blocks": [Block("mbconv", MB), Block("mbconv", dict(MB2, input_hw=32))]}, "block 1 (mbconv) takes 24 "
                                                                                 "channels at 32x32"),
    ({"blocks": [Block("nosuch", MB)]}, "block 0: unknown family 'nosuch'"),
    ({"blocks": [Block("mbconv", dict(MB, kernel=4))]}, "block 0 (mbconv):"),
    ({"blocks": []}, "at least one block"),
    ({"input_hw": 0}, "input_hw=0 is out of range"),
])
def test_bad_networks_name_the_problem(bad, message) -> None:
    with pytest.raises(NetworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        net(**bad)


def test_from_dict_errors() -> None:
    with pytest.raises(NetworkError, match="unknown network field"):
        Network.from_dict({"input_hw": 32, "blocks": [], "bogus": 1})
    with pytest.raises(NetworkError, match="not valid JSON"):
        Network.from_json("{")
    with pytest.raises(NetworkError, match="'blocks' must be a list"):
        Network.from_dict({"input_hw": 32, "blocks": 3})
    with pytest.raises(NetworkError, match=r"stem\.kernel=2"):
        Stem(kernel=2)


def test_network_family_for_the_profiler() -> None:
    n = net()
    cfg = NETWORK.validate(n.to_dict())
    assert NETWORK.key(cfg) == n.key and NETWORK.name == "network"
    assert NETWORK.input_shape(cfg) == (1, 3, 32, 32)
    import pickle

    assert pickle.loads(pickle.dumps(NETWORK)) is NETWORK


def test_block_io_meta_fallback_for_unconventional_family() -> None:
    class Odd:
        def input_shape(self, cfg, batch_size=1):
            return (batch_size, 8, 12, 12)

        def build(self, cfg):
            return torch.nn.Conv2d(8, 5, 3, stride=3)

    assert block_io(Odd(), {}) == ((8, 12), (5, 4))
