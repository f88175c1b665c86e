"""What the store's rooms (:class:`acquisition.store.Store`'s mixins) share."""

from __future__ import annotations

from typing import Any

__all__ = ["Tables"]


class Tables:
    """The database (``self.db``, a ``sqlite_utils.Database``) and whether it has a table."""

    db: Any

    def has_table(self, table: str) -> bool:
        """Whether the database has ``table`` (an older file opened read-only may lack the newer ones)."""
        return table in self.db.table_names()
