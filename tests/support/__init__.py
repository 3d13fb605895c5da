"""Test helpers that run real things: a private mosquitto, a loopback TCP proxy."""
