"""The base of every config table: unknown keys rejected, floats finite.

TOML can spell ``inf`` and ``nan``; neither is a sensible timeout, rate or threshold
(``time.sleep(inf)`` raises, ``nan`` passes no comparison), so every float field of
every section refuses them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
