from __future__ import annotations

import optuna
import pytest

from nas.network import NetworkError
from nas.spaces import MobileNetV2Space, StackedSpace, get_space, list_spaces


@pytest.mark.parametrize("name", ["stacked-mbconv", "stacked-resv1", "stacked-resv2", "mbv2", "mbv3", "resnet",
                                  "resnext"])
def test_spaces_sample_valid_distinct_seeded_networks(name: str) -> None:
    space = get_space(name)
    nets = space.sample(15, seed=3)
    assert len({n.key for n in nets}) == 15
    assert space.sample(15, seed=3) == nets
    assert space.sample(15, seed=4) != nets
    for n in nets:
        assert n.space == name
        if name.startswith("stacked"):
            assert 3 <= len(n.blocks) <= 8 and n.input_hw == 32
            assert all(b.config["input_hw"] >= 8 for b in n.blocks)
            assert sum(b.config["stride"] == 2 for b in n.blocks) <= 2
        elif name == "mbv2":
            assert n.input_hw == 224 and n.head.conv == 1280 and 7 <= len(n.blocks) <= 17
        elif name == "mbv3":  # EfficientNet-B0's stages of mbconvx blocks: 7 to 16 of them
            assert n.input_hw == 224 and n.head.conv == 1280 and 7 <= len(n.blocks) <= 16
            assert {b.family for b in n.blocks} == {"mbconvx"} and n.output_shape()[1] == 7
        else:  # ResNet's stages: 4 to 16 resv1 (resv1x) blocks of one variant (grouping), 224 x 224 in, 7 x 7 out
            assert n.input_hw == 224 and n.head.classes == 1000 and 4 <= len(n.blocks) <= 16
            key = "variant" if name == "resnet" else "groups"
            assert len({b.config[key] for b in n.blocks}) == 1 and n.output_shape()[1] == 7


def test_suggest_is_the_same_definition_as_sampling() -> None:
    space = StackedSpace("resv1")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    n = space.suggest(trial)
    assert trial.params["depth"] == len(n.blocks)
    fixed = optuna.trial.FixedTrial(trial.params)
    assert space.suggest(fixed) == n


def test_unknown_spaces_and_unstackable_families() -> None:
    assert {"stacked-mbconv", "stacked-resv1", "stacked-resv2", "mbv2", "mbv3", "resnet", "resnext"} <= set(
        list_spaces())
    # a family with a width that is no choice cannot be stacked, and is not listed as if it could
    assert not {"stacked-mbconvx", "stacked-resv1x"} & set(list_spaces())
    with pytest.raises(NetworkError, match="'mid' is not a choice"):
        get_space("stacked-mbconvx").sample(1)
    with pytest.raises(NetworkError, match="unknown network space 'nope': known spaces are"):
        get_space("nope")
    with pytest.raises(NetworkError, match="unknown network space 'stacked-nosuch'"):
        get_space("stacked-nosuch")
    with pytest.raises(NetworkError, match="n=0"):
        MobileNetV2Space().sample(0)
