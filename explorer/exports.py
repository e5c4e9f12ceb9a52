"""Files a learner takes away: PNG pictures, animated GIFs and the current code as JSON.

All bytes are made in memory (the page hands them to st.download_button); nothing is written here.
The code file is a small versioned JSON document that the app reads back (`read_code_json`) to
restore a view, the way a link does::

    {"format": "vae-explorer-code", "version": 1, "model": "default", "checkpoint_sha256": "<64 hex>",
     "latent_dim": 8, "z": [0.1, ...], "source": "...", "projection": "PCA", "digit": 17}

projection and digit are left out when unset; latent_dim and source are optional when reading.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

CODE_FORMAT = "vae-explorer-code"
CODE_VERSION = 1
MAX_CODE_BYTES = 100_000
MAX_LATENT = 64
MAX_Z_ABS = 1e6  # far beyond any code the app draws (sliders span +-4); bigger is not a code
MAX_MODEL_CHARS = 200
MAX_SOURCE_CHARS = 80
MAX_NAME_CHARS = 120  # export_name's stem, before the extension
PROJECTIONS = ("PCA", "t-SNE")
DEFAULT_SOURCE = "the code file"
MIN_FRAME_MS, MAX_FRAME_MS = 20, 5000
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _grey(image: np.ndarray) -> Image.Image:
    a = np.asarray(image)
    if a.ndim != 2 or a.dtype != np.uint8 or a.size == 0:
        raise ValueError(f"expected a uint8 grey picture [H, W], got {a.dtype} {a.shape}")
    return Image.fromarray(np.ascontiguousarray(a))  # uint8 [H, W] is mode "L"


def png_bytes(image: np.ndarray) -> bytes:
    """A grey (mode "L") PNG of uint8 image [H, W]; the same pixels always give the same bytes."""
    buf = io.BytesIO()
    # Not optimize=True: on an 8 x 15 traversal grid it took 0.70 s against 0.06 s for 1 % fewer
    # bytes, and the learner waits for it after clicking a download.
    _grey(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def gif_bytes(frames: np.ndarray, frame_ms: int, pingpong: bool = False) -> bytes:
    """An animated grey GIF of uint8 frames [F, H, W] that loops forever, each frame shown frame_ms.

    pingpong appends frames F-2 ... 1, so it plays forward then back without showing either end
    twice in a row: 2F - 2 frames (F when F <= 2). Pillow's writer always merges a frame identical
    to the one before it into that one, adding up their durations; so the GIF has exactly F (or
    2F - 2) frames whenever consecutive frames differ, and a path that stands still gives fewer,
    longer frames: the same animation, never a wrong picture. Frames are full-size, never disposed
    (disposal 1) and not re-optimised (Pillow's optimize may swap pixels for transparency).
    """
    f = np.asarray(frames)
    if f.ndim != 3 or f.dtype != np.uint8 or 0 in f.shape:
        raise ValueError(f"expected uint8 frames [F, H, W], got {f.dtype} {f.shape}")
    if (isinstance(frame_ms, bool) or not isinstance(frame_ms, (int, np.integer))
            or not MIN_FRAME_MS <= frame_ms <= MAX_FRAME_MS):
        raise ValueError(f"the frame time must be a whole number of ms from {MIN_FRAME_MS} to {MAX_FRAME_MS}, "
                         f"got {frame_ms!r}")
    order = list(range(len(f))) + (list(range(len(f) - 2, 0, -1)) if pingpong else [])
    images = [_grey(f[i]) for i in order]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(frame_ms),
                   loop=0, disposal=1, optimize=False)
    return buf.getvalue()


@dataclass(frozen=True)
class CodeFile:
    """What a code file holds: the model (checkpoint stem) and its checkpoint's sha256, the code
    z [D], where it came from, and optionally the map projection and the selected test digit."""

    model: str  # checkpoint stem, e.g. "default"
    sha256: str  # checkpoint digest (hex, 64 chars; read back lower-case)
    z: tuple[float, ...]
    source: str
    projection: str | None = None  # "PCA" | "t-SNE"
    digit: int | None = None  # selected test-set index


class CodeFileError(ValueError):
    """A code file that cannot be used; the message is one sentence a person can act on."""


def code_json(cf: CodeFile) -> str:
    """The code file's JSON text (indent 2, newline-terminated), z rounded to 4 decimals.

    Raises CodeFileError if `cf` would not read back (so the app never offers a file it refuses).
    """
    try:
        z = [round(float(v), 4) + 0.0 for v in cf.z]  # + 0.0 writes -0.0 as 0.0
    except (TypeError, ValueError, OverflowError):
        raise CodeFileError("The code's z is not a list of numbers.") from None
    sha = cf.sha256.lower() if isinstance(cf.sha256, str) else cf.sha256
    doc: dict[str, Any] = {"format": CODE_FORMAT, "version": CODE_VERSION, "model": cf.model,
                           "checkpoint_sha256": sha, "latent_dim": len(z), "z": z, "source": cf.source}
    if cf.projection is not None:
        doc["projection"] = cf.projection
    if cf.digit is not None:
        doc["digit"] = cf.digit.item() if isinstance(cf.digit, np.generic) else cf.digit  # np.int64 from an array
    _from_doc(doc)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def read_code_json(text: str | bytes) -> CodeFile:
    """The CodeFile in `text` (str, or UTF-8 bytes as uploaded); CodeFileError, and nothing else, for anything else."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        if len(raw) > MAX_CODE_BYTES:
            raise CodeFileError(f"The code file is {len(raw):,} bytes; a code file is at most {MAX_CODE_BYTES:,}.")
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not an error
        except UnicodeDecodeError:
            raise CodeFileError("The code file is not UTF-8 text; save it as UTF-8 JSON.") from None
    if not isinstance(text, str):
        raise CodeFileError("The code file is not text.")
    if len(text) > MAX_CODE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
        raise CodeFileError(f"The code file is over {MAX_CODE_BYTES:,} bytes; a code file is far smaller.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and integers past Python's digit limit; RecursionError deep nesting.
        raise CodeFileError("The code file is not valid JSON.") from None
    return _from_doc(doc)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)  # JSON true is not 1


def _short(v: Any) -> str:
    return repr(v)[:24]


def _from_doc(doc: Any) -> CodeFile:
    """Checks a parsed code file field by field; the first problem found is the message."""
    if not isinstance(doc, dict):
        raise CodeFileError("The code file's JSON is not an object with the fields format, model, z, ...")
    if doc.get("format") != CODE_FORMAT:
        raise CodeFileError(f"The file's format is not \"{CODE_FORMAT}\", so it is not a code file of this app.")
    version = doc.get("version")
    if not _is_number(version) or version != CODE_VERSION:
        raise CodeFileError(f"The code file's version is {_short(version)}; this app reads version {CODE_VERSION}.")
    model = doc.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_CHARS:
        raise CodeFileError(f"The code file's model is missing or not a model name "
                            f"(text of 1 to {MAX_MODEL_CHARS} characters).")
    sha = doc.get("checkpoint_sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise CodeFileError("The code file's checkpoint_sha256 is missing or not a sha256 digest (64 hex digits).")
    z = doc.get("z")
    if not isinstance(z, list) or not 1 <= len(z) <= MAX_LATENT:
        raise CodeFileError(f"The code file's z is missing or not a list of 1 to {MAX_LATENT} numbers.")
    if not all(_is_number(v) for v in z):
        bad = next(v for v in z if not _is_number(v))
        raise CodeFileError(f"The code file's z holds {_short(bad)}, which is not a number.")
    # Big ints first: float() of one raises OverflowError; the float range check then catches NaN/inf.
    if not all(abs(v) <= MAX_Z_ABS if isinstance(v, int) else math.isfinite(v) and abs(v) <= MAX_Z_ABS for v in z):
        raise CodeFileError(f"The code file's z holds a number that is not finite or beyond +-{MAX_Z_ABS:g}.")
    values = tuple(float(v) for v in z)
    if "latent_dim" in doc:
        dim = doc["latent_dim"]
        if not isinstance(dim, int) or isinstance(dim, bool) or dim != len(values):
            raise CodeFileError(f"The code file's z has {len(values)} numbers but says latent_dim {_short(dim)}.")
    source = doc.get("source", DEFAULT_SOURCE)
    if source is not None and not isinstance(source, str):
        raise CodeFileError("The code file's source is not text.")
    source = source.strip()[:MAX_SOURCE_CHARS] if source and source.strip() else DEFAULT_SOURCE
    projection = doc.get("projection")
    if projection is not None and projection not in PROJECTIONS:
        raise CodeFileError(f"The code file's projection is {_short(projection)}, "
                            f"not one of {', '.join(PROJECTIONS)}.")
    digit = doc.get("digit")
    if digit is not None and (not isinstance(digit, int) or isinstance(digit, bool) or digit < 0):
        raise CodeFileError(f"The code file's digit is {_short(digit)}, not a test-set index (a whole number >= 0).")
    return CodeFile(model=model, sha256=sha.lower(), z=values, source=source, projection=projection, digit=digit)


def export_name(model: str, what: str, ext: str) -> str:
    """A safe download name: "default-interpolation-test-17-to-mean-of-7-slerp-10.gif".

    Lower-case; anything outside [a-z0-9._-] becomes "-", runs of "-" collapse, and the name never
    starts or ends with "-" or "." (no hidden files); at most 120 characters before the extension.
    """
    stem = re.sub(r"[^a-z0-9._-]", "-", f"{model}-{what}".lower())
    stem = re.sub(r"-{2,}", "-", stem).strip("-.")[:MAX_NAME_CHARS].rstrip("-.") or "export"
    suffix = re.sub(r"[^a-z0-9]", "", ext.lower())
    if not suffix:
        raise ValueError(f"export_name needs an extension such as png, got {ext!r}")
    return f"{stem}.{suffix}"
