"""NAS: whole networks from blocks, their latency from exported predictor bundles, hardware-aware search.

See :mod:`nas.network` (network specs), :mod:`nas.spaces` (search spaces), :mod:`nas.latency` (network latency
from bundles, calibrated), :mod:`nas.accuracy` (accuracy evaluators), :mod:`nas.search` (Optuna search) and
:mod:`nas.compare` (surrogate- against hardware-in-the-loop-guided search).
"""

from nas.network import NETWORK, Block, Head, Network, NetworkError, Stem
from nas.spaces import MobileNetV2Space, NetworkSpace, StackedSpace, get_space, list_spaces

__all__ = ["NETWORK", "Block", "Head", "MobileNetV2Space", "Network", "NetworkError", "NetworkSpace",
           "StackedSpace", "Stem", "get_space", "list_spaces"]
