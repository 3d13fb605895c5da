"""Domain exceptions. Every message names the file or field and says how to fix it.

The CLI turns any ``EdgeError`` into one line on stderr and a non-zero exit;
``--debug`` shows the traceback.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class for every error a user can cause and fix."""

    exit_code = 2


class ModelError(EdgeError):
    """A model file or manifest is missing, corrupt or inconsistent."""


class ManifestError(ModelError):
    """A manifest field is missing, has the wrong type, or names an unknown decoder."""


class ZooError(ModelError):
    """A zoo name is unknown or a pull failed."""


class IntegrityError(ModelError):
    """A file's sha256 does not match the one its manifest pins."""


class InputError(EdgeError):
    """An input (image, audio, video) cannot be read or does not fit the model."""


class BackendUnavailableError(EdgeError):
    """A runtime backend's library is not installed."""


class ConfigError(EdgeError):
    """A device config or profile is invalid."""


class ProfileError(ConfigError):
    """A device profile is unknown or invalid."""
