from __future__ import annotations

import optuna
import pytest

from nas.network import NetworkError
from nas.spaces import MobileNetV2Space, StackedSpace, get_space, list_spaces


@pytest.mark.parametrize("name", ["stacked-mbconv", "stacked-resv1", "stacked-resv2", "mbv2", "resnet"])
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
        else:  # ResNet's stages: 4 to 16 resv1 blocks of one variant, 224 x 224 in, 7 x 7 out
            assert n.input_hw == 224 and n.head.classes == 1000 and 4 <= len(n.blocks) <= 16
            assert len({b.config["variant"] for b in n.blocks}) == 1 and n.output_shape()[1] == 7


def test_suggest_is_the_same_definition_as_sampling() -> None:
    space = StackedSpace("resv1")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    n = space.suggest(trial)
    assert trial.params["depth"] == len(n.blocks)
    fixed = optuna.trial.FixedTrial(trial.params)
    assert space.suggest(fixed) == n


def test_unknown_spaces_and_unstackable_families() -> None:
    assert {"stacked-mbconv", "stacked-resv1", "stacked-resv2", "mbv2", "resnet"} <= set(list_spaces())
    with pytest.raises(NetworkError, match="unknown network space 'nope': known spaces are"):
        get_space("nope")
    with pytest.raises(NetworkError, match="unknown network space 'stacked-nosuch'"):
        get_space("stacked-nosuch")
    with pytest.raises(NetworkError, match="n=0"):
        MobileNetV2Space().sample(0)
