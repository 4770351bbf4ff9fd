"""Networks only: no files, no devices. Build them with :func:`build_model`."""

from .registry import build_model, list_models, register_model

__all__ = ["build_model", "list_models", "register_model"]
