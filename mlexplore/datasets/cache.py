"""On-disk cache for the built-in datasets: a second call with the same
parameters loads the stored ``.npz`` instead of recomputing.

Location: ``$MLEXPLORE_CACHE`` or ``~/.cache/mlexplore``. Delete the folder
(or pass ``cache=False``) to regenerate. A cache file that fails its checks (see
:func:`mlexplore.io.load_cache`: sizes, dtypes, finiteness, content hash) is rebuilt, with a
warning that says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..io.cache import load_cache, save_cache

__all__ = ["cache_dir", "cached"]

#: Bump when a generator's output changes for the same parameters.
GENERATOR_VERSION = 1


def cache_dir() -> Path:
    """The folder where generated datasets are kept."""
    return Path(os.environ.get("MLEXPLORE_CACHE") or Path.home() / ".cache" / "mlexplore")


def cached(name: str, params: dict[str, Any], build: Callable[[], StructureDataset],
           cache: bool = True) -> StructureDataset:
    """Load ``name`` with ``params`` from the cache, or ``build()`` it and store it."""
    key = hashlib.sha256(json.dumps({"name": name, "params": params, "version": GENERATOR_VERSION},
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.npz"
    if cache and path.exists():
        try:
            return load_cache(path)
        except (InputError, OSError) as exc:  # a damaged cache file is rebuilt, never trusted nor fatal
            warnings.warn(f"the cached {name} dataset is damaged and is rebuilt ({exc})", stacklevel=2)
            path.unlink(missing_ok=True)
    ds = build()
    if cache:
        save_cache(ds, path)
    return ds
