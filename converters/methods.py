"""The compression-method registry: one dict, one decorator.

A method is a config dataclass plus a handler ``(model, config) -> model`` (a torch
module in, a torch module out: pruning, factorization, layer sharing, ...):

    @dataclass(frozen=True)
    class Prune:
        sparsity: float = 0.5

    @register_method(Prune)
    def prune(model, config): ...

    model = apply_method(model, Prune(0.3))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocketbert.core.errors import UserError, choices

METHODS: dict[type, Callable[[Any, Any], Any]] = {}


def register_method(config_type: type):
    """Register the handler for ``config_type``; one handler per config type."""

    def decorator(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        if config_type in METHODS:
            raise ValueError(f"{config_type.__name__} already has a method: {METHODS[config_type]}")
        METHODS[config_type] = fn
        return fn

    return decorator


def apply_method(model: Any, config: Any) -> Any:
    """Run the method registered for ``type(config)`` on ``model``; returns the new model."""
    handler = METHODS.get(type(config))
    if handler is None and type(config).__module__ == "pocketbert.converters.compress_configs":
        from pocketbert.converters import (  # noqa: F401
            layer_share,
            low_rank,
            structured_prune,
            vocab_prune,
        )

        handler = METHODS.get(type(config))
    if handler is None:
        known = choices(c.__name__ for c in METHODS) or "none registered"
        raise UserError(f"no compression method handles {type(config).__name__}; known: {known}")
    return handler(model, config)
