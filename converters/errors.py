"""Conversion errors: ``EdgeError`` subclasses, so both CLIs print them as one line."""

from __future__ import annotations

from edge import exit_codes
from edge.errors import EdgeError, InputError


class ConversionError(EdgeError):
    """A model cannot be converted with the chosen profile's recipe."""


class UnsupportedOpError(ConversionError):
    """The model uses an op the profile's runtime or accelerator cannot run."""


class CalibrationError(InputError):
    """The calibration or evaluation set is empty or does not fit the model's input."""


class GateFailedError(ConversionError):
    """The converted model missed the profile's accuracy gate."""

    exit_code = exit_codes.REFUSED


class ToolUnavailableError(ConversionError):
    """An external converter (onnx2tf) is missing and its tool environment cannot be built."""
