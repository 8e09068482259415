"""Saving and loading trained models: one file with the descriptor, normalisation and weights.

Files are written atomically (temporary file + rename): an interrupted save never
leaves a damaged checkpoint behind, and the previous one stays intact. They hold
only plain data and tensors, so :func:`load_model` uses ``torch.load(weights_only=True)``
(loading a checkpoint cannot run code).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..descriptors.config import descriptor_from_config, descriptor_to_config
from ..errors import InputError
from ..io.files import atomic_write
from ..models.bpnn import BPNN
from ..models.committee import Committee
from ..models.ldos_net import LDOSNet

__all__ = ["save_model", "load_model", "MODEL_FORMAT"]

MODEL_FORMAT = "mlexplore-model"
_CLASSES = {"BPNN": BPNN, "Committee": Committee, "LDOSNet": LDOSNet}
#: models whose descriptor is optional (built as ``cls(**config, descriptor=...)``)
_DESCRIPTOR_OPTIONAL = {"LDOSNet"}


def _plain(value: Any) -> Any:
    """Python builtins only (numpy scalars/arrays → float/int/list), so weights-only loading works."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_model(model: BPNN | Committee | LDOSNet, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and JSON-like ``extra``: history, metrics, …) to ``path`` atomically."""
    name = type(model).__name__
    if name not in _CLASSES:
        raise InputError(f"cannot save a {name}; supported: {list(_CLASSES)}")
    payload = {
        "format": MODEL_FORMAT, "version": 1, "model_class": name, "model_config": _plain(model.config()),
        "descriptor": None if model.descriptor is None else _plain(descriptor_to_config(model.descriptor)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": _plain(extra or {}),
    }
    path = Path(path)
    with atomic_write(path, text=False) as tmp:
        torch.save(payload, tmp)
    return path


def _first_line(exc: BaseException, empty: str = "") -> str:
    """The first line of an exception's message (torch's run to a page), or ``empty``."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else empty


def load_model(path: str | os.PathLike, map_location: Any = "cpu", return_extra: bool = False):
    """Read a model written by :func:`save_model` (optionally with its ``extra`` dict)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "allowed global" not in str(exc):  # no forbidden object named: random or damaged bytes
            raise InputError("not a readable mlexplore model file (neither a torch archive nor a pickle: damaged, "
                             "or another kind of file)", path=path) from None
        raise InputError("holds Python objects that an mlexplore model file never has: refused unread, no code "
                         "from it was run (a file from another program, or crafted?)", path=path) from None
    except Exception as exc:  # not a zip, truncated, not torch at all
        raise InputError(f"not a readable mlexplore model file ({type(exc).__name__}: "
                         f"{_first_line(exc, type(exc).__name__)[:160]})",
                         path=path) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError("not an mlexplore model file", path=path)
    missing = [k for k in ("model_class", "descriptor", "model_config", "state_dict") if k not in payload]
    if missing:
        raise InputError(f"an incomplete model file: no {', '.join(map(repr, missing))}", path=path)
    cls = _CLASSES.get(payload["model_class"])
    if cls is None:
        raise InputError(f"unknown model class {payload['model_class']!r}", path=path)
    try:
        config = payload["descriptor"]
        descriptor = None if config is None and payload["model_class"] in _DESCRIPTOR_OPTIONAL else \
            descriptor_from_config(config)
        if payload["model_class"] in _DESCRIPTOR_OPTIONAL:
            model = cls(**payload["model_config"], descriptor=descriptor)
        else:
            model = cls(descriptor, **payload["model_config"])
        state = payload["state_dict"]
        float_dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
        if len(float_dtypes) == 1:  # keep the precision the model was trained in
            model.to(dtype=float_dtypes.pop())
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(".domain." not in f".{k}" for k in missing):
            model.load_state_dict(state)  # raises, naming the keys that do not fit
    except InputError as exc:
        raise InputError(f"its descriptor: {exc.problem}", path=path, field=exc.field) from None
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise InputError(f"the model it describes cannot be built ({type(exc).__name__}: {_first_line(exc)[:200]}): "
                         "damaged, or written by another mlexplore version", path=path) from None
    model.eval()
    return (model, payload["extra"]) if return_extra else model
