"""``torch.compile`` for the descriptor's hot kernels, with an eager fallback.

A kernel is a plain torch function; :func:`compiled_or_eager` hands back its
compiled version (one per device type, dynamic shapes) or, when ``compile`` is
off or the machine cannot compile (no C++ compiler, no Triton on the GPU, …),
the eager one — after one warning, and for the rest of the process on that
device type. Both give the same numbers; both are differentiable.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import torch

__all__ = ["RECOMPILE_LIMIT", "compiled_or_eager"]

#: Compiled specialisations allowed per kernel (dynamo's default is 8): the angular kernel
#: needs one graph per (family, same block, ζ range, dtype, grad or not).
RECOMPILE_LIMIT = 64

_compiled: dict[tuple[str, str], Callable] = {}
_failed: set[str] = set()
_lock = threading.Lock()


def _compile(fn: Callable, device_type: str) -> Callable:
    key = (f"{fn.__module__}.{fn.__qualname__}", device_type)
    with _lock:
        if key not in _compiled:
            _compiled[key] = torch.compile(fn, dynamic=True)
        return _compiled[key]


def compiled_or_eager(fn: Callable, eager: Callable, compile: bool, device_type: str) -> Callable:
    """``fn`` compiled for ``device_type`` when ``compile`` (falling back to ``eager`` with one
    warning if compilation fails), else ``eager``."""
    if not compile or device_type in _failed:
        return eager
    compiled = _compile(fn, device_type)

    def guarded(*args):
        if device_type in _failed:
            return eager(*args)
        try:
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
                return compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: use eager
            _failed.add(device_type)
            warnings.warn(f"torch.compile of the descriptor kernels failed on {device_type} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                          "using the eager versions (same numbers, slower)", stacklevel=3)
            return eager(*args)

    return guarded
