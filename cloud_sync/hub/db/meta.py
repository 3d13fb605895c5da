"""The hub's own values kept in its database (``hub_meta``): shared by every worker on
that database, kept across restarts."""

from __future__ import annotations

import secrets

from cloud_sync.hub.db.engine import Engine


class Meta(Engine):
    def secret(self, name: str) -> str:
        """A random value (256 bits, hex) stored under ``name``: made by whichever worker
        asks first (two starting at once agree: the insert does nothing when it exists)."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO hub_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
                ),
                (name, secrets.token_hex(32)),
            )
            cur.execute(self._sql("SELECT value FROM hub_meta WHERE name = ?"), (name,))
            row = cur.fetchone()
        return str(row[0])
