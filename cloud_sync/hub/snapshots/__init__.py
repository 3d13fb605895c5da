"""Event snapshots at the hub: validation (``validate``, ``jpeg``), storage and
retention (``storage``), the wait for a late event (``pending``) and the writer's side
(``intake``). Never imports an image library: the JPEG check is structural."""
