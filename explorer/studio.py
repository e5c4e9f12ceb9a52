"""What the live studio (the in-browser decoder, app/frontend/studio.js) is given, and its Python mirror.

The studio gets three things:

* the **model payload**: one binary blob per model with the decoder's weights, the atlas arrays
  the browser needs (codes, map coordinates, labels, MNIST test indices) and the verdict's
  thresholds. It never changes for a model, so Streamlit's message cache sends it to a browser
  once and only a reference on later reruns;
* for a model of a family folder (models/beta/, models/ladder/), one **member payload** per other
  member (`decoder_payload`: the same layout, the decoder's layers only), sent once each: the studio
  decodes the current code with every member too;
* the **view**: a small dict (the code, its revision, the projection, slider labels, the family's
  names, the posterior band) resent on every rerun that changes it.

Payload layout (all little-endian)::

    b"VAES" | u32 version | u32 header length H | header JSON (H bytes, space-padded to 4) | blobs

The header names every array as {"offset": bytes from the start of the blobs, "shape": [...],
"dtype": "float32" | "int32" | "uint8"}; 4-byte arrays start on 4-byte boundaries so the browser can view
them without copying. `read_payload` is the reference reader (tests check the browser against it).

Plausibility: how far a code is from the nearest encoded test digit (posterior mean), compared with
how far test digits are from their own nearest neighbour. Far beyond that spacing is a hole of the
latent space: no test digit encodes there, and the decoder was never trained to draw it well.
The thresholds are computed here only (`thresholds`) and travel in the payload; the browser only
compares (tests/test_browser_studio.py checks its verdicts and t-SNE placements against this module).
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explorer import bundle
from explorer.bundle import ExplorerModel
from explorer.codes import SLIDER_LIMIT
from explorer.projection import knn_place
from explorer.state import SLIDER_STEP

PAYLOAD_MAGIC = b"VAES"
PAYLOAD_VERSION = 2  # 2: thresholds in the header; decoder-only member payloads
STRIP_VALUES = (-3.0, -1.5, 0.0, 1.5, 3.0)  # each dimension's strip decodes these values of it
TSNE_NEIGHBOURS = 10  # as explorer.projection.knn_place
_DTYPES = {"float32": "<f4", "int32": "<i4", "uint8": "u1"}  # payload dtype names -> NumPy's
# A family is shown in this order when its members are these (the ladder from autoencoder to VAE);
# any other family (the beta sweep) in natural order of its names.
LADDER_ORDER = ("ae", "ae-noise", "ae-noise-kl", "vae")


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
    nearest: int  # its atlas row (atlas.test_index names its MNIST test index)
    verdict: str  # "typical", "sparse" or "hole"


def neighbour_spacing(mu: np.ndarray) -> NeighbourSpacing:
    """Quantiles of each code's distance to its nearest other code, over mu [N, D] (N >= 2)."""
    from scipy.spatial import cKDTree  # scipy is in the app's requirements; import when needed

    mu = np.asarray(mu, dtype=np.float64)
    dist, _ = cKDTree(mu).query(mu, k=2)
    d = dist[:, 1]
    return NeighbourSpacing(*(float(np.quantile(d, q)) for q in (0.5, 0.95, 0.99)))


@dataclass(frozen=True)
class Thresholds:
    """The verdict's two cut-offs (latent units), computed here and sent to the browser as they are."""

    typical_max: float  # a code at most this far from a test code is "typical"
    sparse_max: float  # up to this far "sparse"; beyond, "hole"


def thresholds(spacing: NeighbourSpacing) -> Thresholds:
    """Typical up to the 95th percentile of test spacing, sparse up to 3x the 99th, beyond a hole."""
    return Thresholds(spacing.p95, 3.0 * spacing.p99)


def verdict(distance: float, spacing: NeighbourSpacing) -> str:
    """'typical', 'sparse' or 'hole' for a code `distance` from its nearest test code (see `thresholds`)."""
    t = thresholds(spacing)
    if distance <= t.typical_max:
        return "typical"
    return "sparse" if distance <= t.sparse_max else "hole"


def plausibility(z: np.ndarray, mu: np.ndarray, spacing: NeighbourSpacing) -> Plausibility:
    """The Python twin of the browser's readout for code z [D] against test codes mu [N, D]."""
    d2 = ((np.asarray(mu, dtype=np.float64) - np.asarray(z, dtype=np.float64)) ** 2).sum(1)
    i = int(np.argmin(d2))
    d = float(np.sqrt(d2[i]))
    return Plausibility(d, i, verdict(d, spacing))


@dataclass(frozen=True)
class MapPlace:
    """Where the studio's marker goes on the t-SNE map: k-NN placed, or off the data (no position)."""

    xy: tuple[float, float] | None  # None when the code is a hole: t-SNE has no place for it
    off_data: bool


def tsne_place(z: np.ndarray, mu: np.ndarray, tsne: np.ndarray, spacing: NeighbourSpacing) -> MapPlace:
    """The t-SNE marker of code z [D] over test codes mu [N, D] with map coords tsne [N, 2].

    k-NN placement (explorer.projection.knn_place) always lands among digits, so a code that is a
    hole would be drawn inside a cluster it is far from: it is marked off the data instead."""
    if plausibility(z, mu, spacing).verdict == "hole":
        return MapPlace(None, True)
    x, y = knn_place(z, mu, tsne, TSNE_NEIGHBOURS)
    return MapPlace((float(x), float(y)), False)


def digit_phrase(label: int) -> str:
    """'a 3', 'an 8': the digit with its article."""
    return f"{'an' if int(label) == 8 else 'a'} {int(label)}"


def kl_order(kl_per_dim: np.ndarray, active: np.ndarray) -> list[int]:
    """Dimensions in display order: active ones by KL (largest first), then inactive ones by KL."""
    kl = np.asarray(kl_per_dim, dtype=np.float64)
    act = np.asarray(active, dtype=bool)
    by_kl = sorted(range(len(kl)), key=lambda i: -kl[i])
    return [i for i in by_kl if act[i]] + [i for i in by_kl if not act[i]]


def model_id(model: ExplorerModel) -> str:
    """A short id the browser keys the payload by (the checkpoint's sha256 prefix)."""
    return model.sha256[:16]


def family_paths(model: ExplorerModel, models_folder: Path | None = None) -> list[Path]:
    """Every checkpoint of the open model's family folder (its own included), in display order;
    [] for a model at the top of the models folder (no family)."""
    folder = model.path.parent.resolve()
    top = (models_folder or bundle.models_dir()).resolve()
    if folder == top:
        return []
    members = [p for p in bundle.list_checkpoints(folder) if p.parent.resolve() == folder]
    if {p.stem for p in members} <= set(LADDER_ORDER):
        return sorted(members, key=lambda p: LADDER_ORDER.index(p.stem))
    return members  # list_checkpoints' natural order: beta-0.25 ... beta-8


def family_entry(member: ExplorerModel, open_model: ExplorerModel) -> dict[str, Any]:
    """One member as the view names it: payload id, full name (for aria-labels), short label."""
    return {"id": model_id(member), "name": member.name, "label": member.name.rsplit("/", 1)[-1],
            "open": member.sha256 == open_model.sha256}


@dataclass(frozen=True)
class Band:
    """A digit's posterior q(z|x) = N(mu, sigma^2) drawn on the sliders, and what it belongs to."""

    what: str  # the code's source: "test digit #12", "your drawing", "your upload"
    mu: tuple[float, ...]
    sigma: tuple[float, ...]
    model: str  # model_id of the model that encoded it
    rev: int  # the code revision it was loaded with

    def to_view(self) -> dict[str, Any]:
        return {"what": self.what, "mu": [round(v, 4) for v in self.mu], "sigma": [round(v, 4) for v in self.sigma]}


def make_band(what: str, mu: np.ndarray, sigma: np.ndarray, model: ExplorerModel, rev: int) -> Band:
    """A Band from mu [D] and sigma [D] (float32 or float64)."""
    return Band(what, tuple(float(v) for v in np.asarray(mu).reshape(-1)),
                tuple(float(v) for v in np.asarray(sigma).reshape(-1)), model_id(model), int(rev))


def band_to_show(found: Band | None, kept: Band | None, model: ExplorerModel, rev: int) -> Band | None:
    """The band for the studio now: the digit the code came from (`found`), else the band kept from
    the revision the code still belongs to (slider releases keep the revision: the learner drags
    inside or out of the band), else none (a reset, a prior draw, another model)."""
    if found is not None:
        return found
    if kept is not None and kept.rev == rev and kept.model == model_id(model):
        return kept
    return None


def _decoder_layers(model: ExplorerModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W [out, in], b [out]) of every decoder Linear in order: the hidden layers then the output."""
    w, cfg = model.atlas.weights, model.atlas.model_config
    layers = [(w[f"decoder_body.{2 * i}.weight"], w[f"decoder_body.{2 * i}.bias"]) for i in range(len(cfg["decoder_hidden"]))]
    return layers + [(w["decoder_out.weight"], w["decoder_out.bias"])]


def model_payload(model: ExplorerModel, spacing: NeighbourSpacing) -> bytes:
    """The binary payload (layout in the module docstring) for `model`'s decoder and atlas."""
    return _payload(model, spacing)


def decoder_payload(model: ExplorerModel) -> bytes:
    """A family member's payload: the same layout with the decoder's layers only (no atlas arrays)."""
    return _payload(model, None)


def _payload(model: ExplorerModel, spacing: NeighbourSpacing | None) -> bytes:
    a = model.atlas
    blobs = bytearray()
    arrays: dict[str, dict[str, Any]] = {}

    def add(name: str, arr: np.ndarray, dtype: str) -> None:
        data = np.ascontiguousarray(arr, dtype=_DTYPES[dtype])
        arrays[name] = {"offset": len(blobs), "shape": list(data.shape), "dtype": dtype}
        blobs.extend(data.tobytes())
        blobs.extend(b"\0" * (-len(blobs) % 4))  # next array on a 4-byte boundary

    layers = []
    for i, (w, b) in enumerate(_decoder_layers(model)):
        add(f"layer{i}.weight", w, "float32")
        add(f"layer{i}.bias", b, "float32")
        layers.append({"weight": f"layer{i}.weight", "bias": f"layer{i}.bias", "in": int(w.shape[1]), "out": int(w.shape[0])})
    header: dict[str, Any] = {
        "id": model_id(model),
        "kind": "decoder" if spacing is None else "model",
        "latent_dim": a.latent_dim,
        "activation": a.model_config.get("activation", "relu"),
        "layers": layers,
        "arrays": arrays,
    }
    if spacing is not None:
        add("mu", a.mu, "float32")
        add("pca", a.pca, "float32")
        add("tsne", a.tsne, "float32")
        add("pca_mean", a.pca_mean, "float32")
        add("pca_components", a.pca_components, "float32")
        add("labels", a.labels, "uint8")
        # the MNIST test-set index of each atlas row (a subset atlas keeps some rows only): what the studio names
        add("test_index", a.test_index if a.test_index is not None else np.arange(a.size), "int32")
        header.update(spacing=asdict(spacing), thresholds=asdict(thresholds(spacing)), tsne_neighbours=TSNE_NEIGHBOURS)
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
        dtype = np.dtype(_DTYPES[spec["dtype"]])
        count = int(np.prod(spec["shape"]))
        arrays[name] = np.frombuffer(blobs, dtype, count, spec["offset"]).reshape(spec["shape"])
    return header, arrays


def view_data(model: ExplorerModel, code: np.ndarray, rev: int, projection: str,
              family: list[dict[str, Any]] | None = None, band: Band | None = None,
              held: list[str] | None = None) -> dict[str, Any]:
    """The studio's small per-rerun input: JSON-ready, a few hundred bytes. `family`: the members
    (family_entry) whose decodes are shown beside the digit; `band`: the posterior on the sliders;
    `held`: ids of payloads the server did not send again because the page said it holds them."""
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
        "family": family or [],
        "band": band.to_view() if band is not None else None,
        "held": sorted(held or []),
    }
