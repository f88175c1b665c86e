from __future__ import annotations

import pytest

from nas.accuracy import AccuracyCache, DigitsEvaluator, cached
from nas.network import Head, Network, NetworkError
from nas.spaces import get_space


@pytest.mark.slow
def test_digits_evaluator_really_trains_and_is_seeded() -> None:
    net = get_space("stacked-resv1").sample(1, seed=5)[0]
    ev = DigitsEvaluator(epochs=3, seed=1)
    a = ev(net)
    assert 0.5 < a <= 1.0  # trained: far above the 10 % of chance on 10 classes
    assert ev(net) == a  # same seed, same accuracy
    assert "e3" in ev.id and "s1" in ev.id and DigitsEvaluator(max_train=300).id.endswith("n300")


def test_digits_evaluator_refuses_bad_settings_and_heads() -> None:
    net = get_space("stacked-resv1").sample(1, seed=5)[0]
    other = Network(input_hw=net.input_hw, blocks=net.blocks, stem=net.stem, head=Head(classes=3))
    with pytest.raises(NetworkError, match="10-class head; this network has 3"):
        DigitsEvaluator(epochs=1, max_train=50)(other)
    for kw, msg in (({"epochs": 0}, "epochs=0"), ({"lr": 0}, "lr=0"), ({"resolution": 4}, "resolution=4")):
        with pytest.raises(NetworkError, match=msg):
            DigitsEvaluator(**kw)


def test_cache_answers_without_training_again(tmp_path) -> None:
    calls = []

    def fake(net: Network) -> float:
        calls.append(net.key)
        return 0.5

    fake.id = "fake-v1"  # type: ignore[attr-defined]
    net = get_space("stacked-mbconv").sample(1, seed=0)[0]
    cache = AccuracyCache(tmp_path / "acc.sqlite")
    run = cached(fake, cache)
    assert run(net)[0] == 0.5 and run(net) == (0.5, 0.0, True)
    assert calls == [net.key]
    cache.close()
    again = cached(fake, AccuracyCache(tmp_path / "acc.sqlite"))  # persisted
    assert again(net)[2] is True and len(calls) == 1

    def broken(net: Network) -> float:
        return 1.5

    with pytest.raises(NetworkError, match=r"returned accuracy 1\.5"):
        cached(broken, None)(net)
