"""Calls a handler with the dependencies it names (cosmicpython's inject_dependencies)."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any


@cache
def _wanted(handler: Callable[..., Any]) -> tuple[tuple[str, ...], bool]:
    params = list(inspect.signature(handler).parameters.values())[1:]
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return tuple(p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD), takes_kwargs


def call_handler(handler: Callable[..., Any], message: Any, available: Mapping[str, Any]) -> Any:
    names, takes_kwargs = _wanted(handler)
    missing = [n for n in names if n not in available]
    params = inspect.signature(handler).parameters
    missing = [n for n in missing if params[n].default is inspect.Parameter.empty]
    if missing:
        raise TypeError(f"{handler.__qualname__} needs dependencies not wired: {missing}")
    kwargs = dict(available) if takes_kwargs else {n: available[n] for n in names if n in available}
    return handler(message, **kwargs)
