"""What the live studio (the in-browser decoder, app/frontend/studio.js) is given, and its Python mirror.

The studio gets two things:

* the **model payload**: one binary blob per model with the decoder's weights and the atlas arrays
  the browser needs (codes, map coordinates, labels). It never changes for a model, so Streamlit's
  message cache sends it to a browser once and only a reference on later reruns;
* the **view**: a small dict (the code, its revision, the projection, slider labels) resent on
  every rerun that changes it.

Payload layout (all little-endian)::

    b"VAES" | u32 version | u32 header length H | header JSON (H bytes, space-padded to 4) | blobs

The header names every array as {"offset": bytes from the start of the blobs, "shape": [...],
"dtype": "float32" | "uint8"}; float32 arrays start on 4-byte boundaries so the browser can view
them without copying. `read_payload` is the reference reader (tests check the browser against it).

Plausibility: how far a code is from the nearest encoded test digit (posterior mean), compared with
how far test digits are from their own nearest neighbour. Far beyond that spacing is a hole of the
latent space: no test digit encodes there, and the decoder was never trained to draw it well.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from explorer.bundle import ExplorerModel
from explorer.codes import SLIDER_LIMIT
from explorer.state import SLIDER_STEP

PAYLOAD_MAGIC = b"VAES"
PAYLOAD_VERSION = 1
STRIP_VALUES = (-3.0, -1.5, 0.0, 1.5, 3.0)  # each dimension's strip decodes these values of it
TSNE_NEIGHBOURS = 10  # as explorer.projection.knn_place


@dataclass(frozen=True)
class NeighbourSpacing:
    """How far test codes are from their nearest other test code (Euclidean, latent units)."""

    median: float
    p95: float
    p99: float


@dataclass(frozen=True)
class Plausibility:
    """Where a code stands against the encoded test set."""

    distance: float  # to the nearest test code
    nearest: int  # its test-set index
    verdict: str  # "typical", "sparse" or "hole"


def neighbour_spacing(mu: np.ndarray) -> NeighbourSpacing:
    """Quantiles of each code's distance to its nearest other code, over mu [N, D] (N >= 2)."""
    from scipy.spatial import cKDTree  # scipy is in the app's requirements; import when needed

    mu = np.asarray(mu, dtype=np.float64)
    dist, _ = cKDTree(mu).query(mu, k=2)
    d = dist[:, 1]
    return NeighbourSpacing(*(float(np.quantile(d, q)) for q in (0.5, 0.95, 0.99)))


def verdict(distance: float, spacing: NeighbourSpacing) -> str:
    """'typical' up to the 95th percentile of test spacing, 'sparse' up to 3x the 99th, else 'hole'."""
    if distance <= spacing.p95:
        return "typical"
    return "sparse" if distance <= 3.0 * spacing.p99 else "hole"


def plausibility(z: np.ndarray, mu: np.ndarray, spacing: NeighbourSpacing) -> Plausibility:
    """The Python twin of the browser's readout for code z [D] against test codes mu [N, D]."""
    d2 = ((np.asarray(mu, dtype=np.float64) - np.asarray(z, dtype=np.float64)) ** 2).sum(1)
    i = int(np.argmin(d2))
    d = float(np.sqrt(d2[i]))
    return Plausibility(d, i, verdict(d, spacing))


def kl_order(kl_per_dim: np.ndarray, active: np.ndarray) -> list[int]:
    """Dimensions in display order: active ones by KL (largest first), then inactive ones by KL."""
    kl = np.asarray(kl_per_dim, dtype=np.float64)
    act = np.asarray(active, dtype=bool)
    by_kl = sorted(range(len(kl)), key=lambda i: -kl[i])
    return [i for i in by_kl if act[i]] + [i for i in by_kl if not act[i]]


def model_id(model: ExplorerModel) -> str:
    """A short id the browser keys the payload by (the checkpoint's sha256 prefix)."""
    return model.sha256[:16]


def _decoder_layers(model: ExplorerModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W [out, in], b [out]) of every decoder Linear in order: the hidden layers then the output."""
    w, cfg = model.atlas.weights, model.atlas.model_config
    layers = [(w[f"decoder_body.{2 * i}.weight"], w[f"decoder_body.{2 * i}.bias"]) for i in range(len(cfg["decoder_hidden"]))]
    return layers + [(w["decoder_out.weight"], w["decoder_out.bias"])]


def model_payload(model: ExplorerModel, spacing: NeighbourSpacing) -> bytes:
    """The binary payload (layout in the module docstring) for `model`'s decoder and atlas."""
    a = model.atlas
    blobs = bytearray()
    arrays: dict[str, dict[str, Any]] = {}

    def add(name: str, arr: np.ndarray, dtype: str) -> None:
        data = np.ascontiguousarray(arr, dtype="<f4" if dtype == "float32" else "u1")
        arrays[name] = {"offset": len(blobs), "shape": list(data.shape), "dtype": dtype}
        blobs.extend(data.tobytes())
        blobs.extend(b"\0" * (-len(blobs) % 4))  # next array on a 4-byte boundary

    layers = []
    for i, (w, b) in enumerate(_decoder_layers(model)):
        add(f"layer{i}.weight", w, "float32")
        add(f"layer{i}.bias", b, "float32")
        layers.append({"weight": f"layer{i}.weight", "bias": f"layer{i}.bias", "in": int(w.shape[1]), "out": int(w.shape[0])})
    add("mu", a.mu, "float32")
    add("pca", a.pca, "float32")
    add("tsne", a.tsne, "float32")
    add("pca_mean", a.pca_mean, "float32")
    add("pca_components", a.pca_components, "float32")
    add("labels", a.labels, "uint8")
    if a.test_index is not None:  # a subset atlas: row i is MNIST test digit test_index[i] (exact in float32)
        add("test_index", a.test_index, "float32")
    header = {
        "id": model_id(model),
        "latent_dim": a.latent_dim,
        "activation": a.model_config.get("activation", "relu"),
        "layers": layers,
        "arrays": arrays,
        "spacing": asdict(spacing),
        "tsne_neighbours": TSNE_NEIGHBOURS,
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    return PAYLOAD_MAGIC + struct.pack("<II", PAYLOAD_VERSION, len(text)) + text + bytes(blobs)


def read_payload(payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays by name) of a payload; ValueError if it is not one of this version."""
    if payload[:4] != PAYLOAD_MAGIC or len(payload) < 12:
        raise ValueError("not a studio payload")
    version, n = struct.unpack("<II", payload[4:12])
    if version != PAYLOAD_VERSION:
        raise ValueError(f"studio payload version {version}, expected {PAYLOAD_VERSION}")
    header = json.loads(payload[12 : 12 + n])
    blobs = memoryview(payload)[12 + n :]
    arrays = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype("<f4" if spec["dtype"] == "float32" else "u1")
        count = int(np.prod(spec["shape"]))
        arrays[name] = np.frombuffer(blobs, dtype, count, spec["offset"]).reshape(spec["shape"])
    return header, arrays


def view_data(model: ExplorerModel, code: np.ndarray, rev: int, projection: str) -> dict[str, Any]:
    """The studio's small per-rerun input: JSON-ready, a few hundred bytes."""
    a = model.atlas
    return {
        "model": model_id(model),
        "code": [float(v) for v in np.asarray(code, dtype=np.float64)],
        "rev": int(rev),
        "projection": projection,
        "limit": SLIDER_LIMIT,
        "step": SLIDER_STEP,
        "strip": list(STRIP_VALUES),
        "order": kl_order(a.kl_per_dim, a.active),
        "kl": [round(float(v), 3) for v in a.kl_per_dim],
        "active": [bool(v) for v in a.active],
    }
