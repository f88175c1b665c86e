"""``gbt-quick``: gradient boosting with 40 trees at a rate of 0.25, for the tests whose subject is not the model.

The engine's, the store's and the command line's tests run whole campaigns; with the default ``gbt`` (300 trees)
nine tenths of their time went to growing trees on a few dozen rows. The model's own tests keep ``gbt``.
Imported by ``tests/conftest.py``; a subprocess gets it with ``--plugin tests.quick_models``.
"""

from __future__ import annotations

from typing import Any

from surrogates.models import register_model
from surrogates.models.boosting import GBTRegressor

QUICK = "gbt-quick"


def quick_gbt(**params: Any) -> GBTRegressor:
    return GBTRegressor(**{"max_iter": 40, "learning_rate": 0.25, **params})


register_model(QUICK, quick_gbt, "gradient boosting, 40 trees (tests only)", replace=True)
