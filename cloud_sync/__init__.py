"""Device-to-cloud sync: wire schema, durable outbox, MQTT publisher, and the hub."""
