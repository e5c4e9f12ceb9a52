"""Reading and writing the latent atlas without torch, so the app starts without importing it.

`<checkpoint stem>.atlas.npz` beside each checkpoint holds plain arrays only (np.load with
allow_pickle=False); see training.atlas for what each array is and how it is computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.fileio import atomic_write_bytes

ATLAS_SUFFIX = ".atlas.npz"
WEIGHT_PREFIX = "w__"  # model weights as float32 arrays: w__encoder.0.weight, ...
JSON_KEYS = ("metrics_json", "checkpoint_json")  # JSON documents stored as 0-d unicode arrays
ATLAS_KEYS = ("mu", "logvar", "labels", "images", "pca", "pca_mean", "pca_components", "pca_explained",
              "tsne", "kl_per_dim", "mu_variance", "checkpoint_sha256", *JSON_KEYS)


def atlas_path_for(checkpoint: str | Path) -> Path:
    """models/vae.pt -> models/vae.atlas.npz"""
    p = Path(checkpoint)
    return p.with_name(p.stem + ATLAS_SUFFIX)


def save_atlas(path: str | Path, atlas: dict[str, Any]) -> None:
    """Atomic compressed npz write; dict/list values under JSON_KEYS are serialised to JSON text."""
    arrays = {k: np.asarray(json.dumps(v)) if k in JSON_KEYS and not isinstance(v, (str, np.ndarray)) else v
              for k, v in atlas.items()}
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def load_atlas(path: str | Path) -> dict[str, Any]:
    """Arrays by name, with `metrics` and `checkpoint` parsed from JSON and `weights` gathered
    into one dict (name -> float32 array). Never unpickles (allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ATLAS_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path} is not a latent atlas of this project (missing {missing})")
        out: dict[str, Any] = {k: z[k] for k in z.files}
    out["checkpoint_sha256"] = str(out["checkpoint_sha256"])
    out["metrics"] = json.loads(str(out.pop("metrics_json")))
    out["checkpoint"] = json.loads(str(out.pop("checkpoint_json")))
    out["weights"] = {k[len(WEIGHT_PREFIX):]: out.pop(k) for k in list(out) if k.startswith(WEIGHT_PREFIX)}
    return out
