"""The latent atlas: its typed contract (`Atlas`), its versioned .npz file, and its validation.

`<checkpoint stem>.atlas.npz` beside each checkpoint holds plain arrays only (np.load with
allow_pickle=False), written by training.atlas and read by the app, which never imports torch:

  format_version ()           int; files written before the key existed are version 1
  mu, logvar [N, D] float32   posterior of each test digit (grey-level input, deterministic)
  labels [N] uint8 (0..9)     images [N, 784] uint8: the test digits themselves, for display
  pca [N, 2] float32, pca_mean [D], pca_components [2, D], pca_explained [2]: exact projection
  tsne [N, 2] float32         t-SNE of mu (fixed seed), computed once offline
  kl_per_dim [D], mu_variance [D]   per-dimension KL and Cov_x(E_q[z_u]) (active units)
  checkpoint_sha256 ()        str: ties the atlas to the exact checkpoint bytes
  metrics_json ()             str: the evaluation of training.evaluate (JSON object)
  checkpoint_json ()          str: model config, train config, stages, best epoch (JSON object)
  w__<name>                   float32 weights of the model by state_dict name (the app runs them in NumPy)
  test_index [N] int32        optional (version 2): which digits of the test set the N rows are, in
                              increasing order; absent, the atlas holds the whole test set in order
  dyn_<field>                 optional (version 2): the training dynamics, one array per field of
                              common.dynamics_format.Dynamics (per-epoch test statistics, snapshots);
                              an atlas without them (every version-1 file) loads with dynamics None

`load_atlas` checks every array against the others and against the model config, so a damaged or
mismatched file is refused at load time with one message, instead of failing later as a traceback
or, worse, as wrong pictures.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.dynamics_format import Dynamics, DynamicsError, validate_dynamics
from common.fileio import atomic_write_bytes
from common.records import CheckpointSummary, Metrics, RecordError

# Bump when the layout changes; load_atlas refuses versions it does not know. 2: optional dyn_ arrays
# and test_index.
FORMAT_VERSION = 2
WEIGHT_PREFIX = "w__"
DYNAMICS_PREFIX = "dyn_"
IMAGE_PIXELS = 784
ARRAY_KEYS = ("mu", "logvar", "labels", "images", "pca", "pca_mean", "pca_components", "pca_explained",
              "tsne", "kl_per_dim", "mu_variance")
REQUIRED_KEYS = (*ARRAY_KEYS, "checkpoint_sha256", "metrics_json", "checkpoint_json")
__all__ = ["FORMAT_VERSION", "Atlas", "AtlasError", "Dynamics", "load_atlas", "read_atlas_file", "save_atlas", "validate"]


class AtlasError(ValueError):
    """An atlas file that cannot be used; the message says which part is wrong."""


@dataclass(frozen=True)
class Atlas:
    """Everything the app knows about a checkpoint's encoded test set; shapes in the module docstring.

    Treat as read-only: one instance is shared by every session of the app.
    """

    mu: np.ndarray
    logvar: np.ndarray
    labels: np.ndarray
    images: np.ndarray
    pca: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    pca_explained: np.ndarray
    tsne: np.ndarray
    kl_per_dim: np.ndarray
    mu_variance: np.ndarray
    checkpoint_sha256: str
    metrics: Metrics = field(default_factory=Metrics)  # the test-set evaluation (common.records)
    checkpoint: CheckpointSummary = field(default_factory=lambda: CheckpointSummary(model_config={}))
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    dynamics: Dynamics | None = None  # how the model learnt (common.dynamics_format); None if not recorded
    # [N] int32, increasing: the test-set index of each row, for an atlas of a subset of the test set
    # (the beta sweep's keep 2,006 digits to stay small); None: row i is test digit i of all N.
    test_index: np.ndarray | None = None
    format_version: int = FORMAT_VERSION  # of the file it was read from

    @property
    def size(self) -> int:
        """N, the number of encoded test digits."""
        return int(self.mu.shape[0])

    @property
    def latent_dim(self) -> int:
        """D."""
        return int(self.mu.shape[1])

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self.checkpoint.model_config)

    @property
    def active(self) -> np.ndarray:
        """bool [D]: unit u is active if Cov_x(E_q[z_u]) > 0.01 (Burda et al. 2015)."""
        return self.mu_variance > 0.01

    def rows_of(self, test_indices: np.ndarray) -> np.ndarray:
        """int [K]: the atlas row holding each test-set index in test_indices [K], -1 where none does."""
        wanted = np.asarray(test_indices, dtype=np.int64)
        index = np.arange(self.size) if self.test_index is None else self.test_index.astype(np.int64)
        pos = np.clip(np.searchsorted(index, wanted), 0, len(index) - 1)
        return np.where(index[pos] == wanted, pos, -1)


def save_atlas(path: str | Path, atlas: Atlas) -> None:
    """Validate, then write atomically as a compressed npz (an old file stays whole if this fails)."""
    validate(atlas)
    arrays: dict[str, Any] = {k: getattr(atlas, k) for k in ARRAY_KEYS}
    # The layout written is this code's, whatever version the atlas was read from.
    arrays["format_version"] = np.asarray(FORMAT_VERSION, dtype=np.int64)
    arrays["checkpoint_sha256"] = np.asarray(atlas.checkpoint_sha256)
    arrays["metrics_json"] = np.asarray(json.dumps(atlas.metrics.to_dict()))
    arrays["checkpoint_json"] = np.asarray(json.dumps(atlas.checkpoint.to_dict()))
    arrays.update({WEIGHT_PREFIX + k: v for k, v in atlas.weights.items()})
    if atlas.test_index is not None:
        arrays["test_index"] = atlas.test_index
    if atlas.dynamics is not None:
        arrays.update(atlas.dynamics.to_arrays(DYNAMICS_PREFIX))
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def read_atlas_file(path: str | Path) -> Atlas:
    """The file's contents as an Atlas, without the cross-checks of `validate` (see `load_atlas`).

    Never unpickles (allow_pickle=False). Raises AtlasError for anything that is not an atlas.
    """
    try:
        # We open the file ourselves: np.load leaks its own handle when a truncated zip fails to parse.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            files = set(z.files)
            missing = [k for k in REQUIRED_KEYS if k not in files]
            if missing:
                raise AtlasError(f"not a latent atlas of this project (missing {', '.join(missing)})")
            raw = {k: z[k] for k in z.files}
    except AtlasError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        # Truncated zips, garbage bytes and object arrays (refused by allow_pickle=False) end here.
        raise AtlasError(f"not a readable .npz file ({type(e).__name__}: {e})") from e
    version = int(raw.pop("format_version")) if "format_version" in raw else 1
    if version > FORMAT_VERSION:
        raise AtlasError(f"atlas format {version} is newer than this code reads ({FORMAT_VERSION}); update the explorer")
    texts = {}
    for key in ("checkpoint_sha256", "metrics_json", "checkpoint_json"):
        value = raw.pop(key)
        if value.dtype.kind != "U" or value.ndim != 0:
            raise AtlasError(f"{key} must be a text scalar, got {value.dtype} {list(value.shape)}")
        texts[key] = str(value)
    documents = {}
    for key in ("metrics_json", "checkpoint_json"):
        try:
            documents[key] = json.loads(texts[key])
        except json.JSONDecodeError as e:
            raise AtlasError(f"{key} is not valid JSON ({e})") from e
        if not isinstance(documents[key], dict):
            raise AtlasError(f"{key} must be a JSON object")
    try:
        metrics = Metrics.from_dict(documents["metrics_json"])
        checkpoint = CheckpointSummary.from_dict(documents["checkpoint_json"])
    except RecordError as e:
        raise AtlasError(f"the atlas's record of its checkpoint is damaged: {e}") from e
    weights = {k[len(WEIGHT_PREFIX):]: raw.pop(k) for k in list(raw) if k.startswith(WEIGHT_PREFIX)}
    dynamics = None
    if any(k.startswith(DYNAMICS_PREFIX) for k in raw):
        try:
            dynamics = Dynamics.from_arrays(raw, DYNAMICS_PREFIX)
        except DynamicsError as e:
            raise AtlasError(f"training dynamics {e}") from e
    return Atlas(**{k: raw[k] for k in ARRAY_KEYS}, checkpoint_sha256=texts["checkpoint_sha256"],
                 metrics=metrics, checkpoint=checkpoint, weights=weights,
                 dynamics=dynamics, test_index=raw.get("test_index"), format_version=version)


def load_atlas(path: str | Path) -> Atlas:
    """read_atlas_file + validate: an Atlas whose arrays agree with each other and the model config."""
    atlas = read_atlas_file(path)
    validate(atlas)
    return atlas


def _check(array: np.ndarray, name: str, shape: tuple[int, ...], kind: str) -> None:
    """Exact shape, dtype kind ('f' float, 'u' unsigned, 'iu' any integer) and, for floats, finiteness."""
    if not isinstance(array, np.ndarray):
        raise AtlasError(f"{name} is not an array")
    if array.shape != shape:
        raise AtlasError(f"{name} has shape {list(array.shape)}, expected {list(shape)}")
    if array.dtype.kind not in kind:
        raise AtlasError(f"{name} has dtype {array.dtype}, expected {'a float' if kind == 'f' else 'an integer'} type")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise AtlasError(f"{name} holds NaN or infinite values")


def validate(atlas: Atlas) -> None:
    """Raise AtlasError unless every array has the shape, dtype and values the others imply.

    N and D come from mu; the model config must describe D latent units over 784 pixels, and the
    dynamics, if any, D units and indices into the N digits. The
    weights' names and shapes are checked by explorer.numpy_vae.NumpyVAE, which knows the layers.
    """
    mu = atlas.mu
    if not isinstance(mu, np.ndarray) or mu.ndim != 2 or mu.shape[0] < 2 or mu.shape[1] < 1:
        raise AtlasError(f"mu must be [N, D] with N >= 2, got {list(getattr(mu, 'shape', []))}")
    n, d = mu.shape
    for name, shape, kind in (("mu", (n, d), "f"), ("logvar", (n, d), "f"), ("labels", (n,), "iu"),
                              ("images", (n, IMAGE_PIXELS), "u"), ("pca", (n, 2), "f"), ("pca_mean", (d,), "f"),
                              ("pca_components", (2, d), "f"), ("pca_explained", (2,), "f"), ("tsne", (n, 2), "f"),
                              ("kl_per_dim", (d,), "f"), ("mu_variance", (d,), "f")):
        _check(getattr(atlas, name), name, shape, kind)
    if atlas.labels.min() < 0 or atlas.labels.max() > 9:
        raise AtlasError("labels must be digits 0..9")
    if atlas.images.dtype != np.uint8:
        raise AtlasError(f"images must be uint8, got {atlas.images.dtype}")
    if (atlas.kl_per_dim < -1e-4).any() or (atlas.mu_variance < 0).any():
        raise AtlasError("kl_per_dim and mu_variance must be >= 0")
    if len(atlas.checkpoint_sha256) != 64:
        raise AtlasError("checkpoint_sha256 must be a sha256 hex digest")
    config = atlas.checkpoint.model_config
    if not config:
        raise AtlasError("checkpoint_json holds no model_config")
    if config.get("latent_dim") != d:
        raise AtlasError(f"the codes are {d}-d but the model config says latent_dim={config.get('latent_dim')!r}")
    if config.get("input_dim", IMAGE_PIXELS) != IMAGE_PIXELS:
        raise AtlasError(f"the model config says input_dim={config.get('input_dim')!r}, expected {IMAGE_PIXELS}")
    for name, w in atlas.weights.items():
        if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
            raise AtlasError(f"weight {name} is not a float array")
        if not np.isfinite(w).all():
            raise AtlasError(f"weight {name} holds NaN or infinite values")
    if atlas.test_index is not None:
        _check(atlas.test_index, "test_index", (n,), "iu")
        if atlas.test_index[0] < 0 or (np.diff(atlas.test_index.astype(np.int64)) <= 0).any():
            raise AtlasError("test_index must be increasing test-set indices >= 0")
    if atlas.dynamics is not None:
        dyn = atlas.dynamics
        try:
            validate_dynamics(dyn, latent_dim=d, test_size=n if atlas.test_index is None else None)
        except DynamicsError as e:
            raise AtlasError(f"training dynamics: {e}") from e
        if atlas.test_index is not None:
            if atlas.test_index[-1] >= dyn.test_size:
                raise AtlasError(f"test_index goes past the {dyn.test_size} digits the training dynamics index")
            if (atlas.rows_of(dyn.code_index) < 0).any() or (atlas.rows_of(dyn.recon_index) < 0).any():
                raise AtlasError("the atlas lacks test digits its training dynamics follow")

