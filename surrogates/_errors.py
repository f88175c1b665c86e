"""Exceptions of the surrogates package (importable without loading scikit-learn or ngboost)."""

from __future__ import annotations

__all__ = ["BundleError", "EncoderError", "ModelError"]


class EncoderError(ValueError):
    """An encoder spec this version cannot use, or configurations it cannot encode."""


class ModelError(ValueError):
    """An unknown model name or a bad registration."""


class BundleError(ValueError):
    """A bundle that cannot be used: unreadable, tampered with, of another family/space or format version."""
