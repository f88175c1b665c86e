"""The predictor bundle a campaign exports: its model, and a manifest of what the campaign verified and used.

Contract: :func:`export_predictor` writes the bundle (:func:`surrogates.export_bundle`) and records it with the
campaign; the manifest carries the last iteration's verified metrics, the fidelity summary and the transfer
sources the campaign used.
"""

from __future__ import annotations

from typing import Any

from acquisition.campaign import CampaignSpec
from acquisition.fidelity import Fidelity

__all__ = ["export_predictor", "manifest_metrics"]


def manifest_metrics(last: dict[str, Any] | None, verification: str) -> dict[str, Any]:
    """The verified metrics of the last iteration (``{}`` before the first), as the manifest carries them."""
    if not last:
        return {}
    return {"spearman": last["spearman"], "spearman_lo": last["spearman_lo"], "mape": last["mape"],
            "acc10": last["acc10"], "coverage80": last["coverage80"], "verification": verification,
            "n_verify": last["n_verify"]}


def export_predictor(path: str, model: Any, model_name: str, encoder: Any, *, store: Any, spec: CampaignSpec,
                     fid: Fidelity, platform: dict[str, Any], n_train: int, last: dict[str, Any] | None) -> None:
    """Write ``model`` to the bundle ``path`` and record it as the campaign's predictor."""
    from surrogates import export_bundle

    metrics = manifest_metrics(last, spec.verification)
    export_bundle(path, model, encoder, model_name=model_name, platform=platform, n_train=n_train, metrics=metrics,
                  extra={"campaign": spec.name, "strategy": spec.strategy, "model_setting": spec.model,
                         "fidelity": fid.summary(store.members(spec.name, "train", status="ok")),
                         "transfer": {"sources": [s["name"] for s in store.campaign_sources(spec.name) if s["used"]],
                                      "model_uses_them": model_name.startswith("transfer:")}})
    store.add_predictor(spec.name, path, metrics)
