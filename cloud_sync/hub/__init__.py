"""edge-hub: MQTT ingest, storage, dashboard and JSON/SSE feed."""
