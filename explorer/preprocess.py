"""Turn an uploaded picture of one handwritten digit into an MNIST-style [28, 28] array.

MNIST itself was made this way (LeCun et al., "Gradient-based learning applied to document
recognition", 1998, and the MNIST page): a white digit on black, size-normalised to fit a 20x20
box keeping its aspect ratio (with anti-aliasing), then placed in a 28x28 field so that its centre
of mass sits at the centre. `prepare_digit` reproduces that from a photo or a drawing:

    bytes -> checked decode (format, size, bomb limits) -> frame 0, EXIF orientation
          -> grayscale (alpha on white, high bit depths rescaled)
          -> background surface removed, polarity decided, ink found with Otsu
          -> specks dropped, soft stroke kept, thin strokes thickened
          -> crop, fit in 20x20, centre of mass at (14, 14), max = 1.

Every failure is an `UnusableImageError` (a `ValueError`) whose message tells a person what is
wrong and what to upload instead; no Pillow/NumPy exception escapes.

Memory is bounded whatever the file (issue 20; docs/security.md): the decode's cost is estimated
from the header and refused above MAX_DECODE_BYTES, the grey conversion runs in strips reduced as
they go (no full-size copy beside the decoded frame), and large decodes take turns.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

# why no module-level `from scipy import ndimage`: it costs ~0.3 s, and the app imports this
# module at start-up; the functions that need it import it on first use instead.

__all__ = [
    "UnusableImageError",
    "prepare_digit",
    "ACCEPTED_FORMATS",
    "MAX_FILE_BYTES",
    "UPLOAD_LIMIT_MB",
    "MAX_DECODE_BYTES",
    "decode_bytes",
    "MAX_PIXELS",
    "MIN_SIDE",
    "MAX_ASPECT",
    "MAX_INK_ASPECT",
    "MNIST_SIZE",
    "MNIST_BOX",
    "TARGET_STROKE_PX",
    "THIN_STROKE_PX",
]

logger = logging.getLogger(__name__)

# --- Limits on what is accepted ---------------------------------------------------------------
#: Formats checked from the decoded header, never from the file name. MPO is what Pillow calls
#: the multi-picture JPEG many phone cameras write; it is a JPEG for our purposes.
ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP")
# The decoders Pillow is allowed to try (MPO has no opener of its own: the JPEG one returns it).
_OPEN_FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP"]
_FORMATS_FOR_PEOPLE = "PNG, JPEG, GIF, WebP or BMP"
#: The upload limit in MB, decimal (1 MB = 1,000,000 bytes), as the browser's uploader counts it and
#: says it ("200MB" is 200e6 bytes there). The app's uploader (max_upload_size) and the server
#: (.streamlit/config.toml server.maxUploadSize) are set to this same number; the server counts its
#: MB as MiB (20 MiB = 20,971,520 bytes), so what a crafted client slips between the two is refused
#: here, in the same words. Larger uploads are refused before decoding (a phone photo is 2-8 MB).
UPLOAD_LIMIT_MB = 20
MAX_FILE_BYTES = UPLOAD_LIMIT_MB * 1_000_000
#: Pixel limit checked from the header, before the pixels are decoded: well under Pillow's own
#: bomb limit (89 MP warns, 179 MP raises), so a small file claiming a huge size costs nothing.
MAX_PIXELS = 40_000_000
#: Smallest accepted width/height: below this there is no digit to see.
MIN_SIDE = 8
#: Most memory one picture's decode may take: Pillow's frame (1 byte per pixel for grey or palette
#: images, 2 for 16-bit grey, 4 for colour), plus a decoder's own buffers where they are large
#: (progressive JPEG keeps every DCT coefficient, WebP copies its frame twice; both measured).
#: With the upload's bytes (<= 20 MB) and the strips below, one upload stays under ~150 MB above the
#: idle server; a picture that would need more is refused from its header, before decoding.
MAX_DECODE_BYTES = 80 * 2**20
#: A decode needing more than this waits for a turn: at most LARGE_DECODES_AT_ONCE run at once (on
#: the 2-core server: one core for large pictures, the other for the rest of the class; more at once
#: only adds memory), and a turn not given within LARGE_DECODE_WAIT_S seconds refuses the upload
#: with "busy". Ordinary pictures (a phone photo decoded at reduced scale, a drawing) need far less
#: and never wait. Measured with ten hostile uploads at once (bench.hostile_server): 1 or 2 turns
#: gave the same peak; with 1 a learner's photo sent meanwhile was answered a little sooner.
LARGE_DECODE_BYTES = 16 * 2**20
LARGE_DECODES_AT_ONCE = 1
LARGE_DECODE_WAIT_S = 60.0
#: Pictures larger than the working size are converted to grey in strips of about this many pixels,
#: each reduced at once, so no full-size copy of the picture exists beside the decoded frame.
STRIP_PIXELS = 1_000_000
#: Widest accepted image aspect ratio (long side : short side).
MAX_ASPECT = 20.0
#: Widest accepted aspect ratio of the ink's bounding box; beyond it the ink is a line
#: (a ruled line, a page edge), not a digit. Generous because a thin pen "1" is tall and narrow.
MAX_INK_ASPECT = 40.0

# --- MNIST geometry ---------------------------------------------------------------------------
MNIST_SIZE = 28  #: output side, pixels
MNIST_BOX = 20  #: the digit's longer side after size normalisation (LeCun et al.)
#: Typical MNIST stroke width, pixels in the 28x28 image (median 2.6, 10th percentile 2.1,
#: measured on the test set as 2*area/perimeter of pixels > 0.5). Strokes that would end up
#: thinner than THIN_STROKE_PX (a pen line on a big photo) are thickened to about TARGET_STROKE_PX;
#: strokes already in MNIST's own range are left alone.
TARGET_STROKE_PX = 2.5
THIN_STROKE_PX = 1.8

# --- Ink detection ----------------------------------------------------------------------------
#: Images are analysed with the longer side at most this: enough for a digit, and keeps the
#: background fit, labelling and dilation to a few milliseconds.
WORK_MAX_SIDE = 512
#: Ink must differ from the fitted background by at least this (0..1 scale) ...
MIN_INK_CONTRAST = 0.10
#: ... and by this many noise standard deviations, so paper grain or sensor noise is not ink.
NOISE_SIGMAS = 4.0
#: Ink blobs smaller than this fraction of the largest blob are specks (dust, paper fibres).
SPECK_FRACTION = 0.05
#: Fewer ink pixels than this (at working size) is no digit.
MIN_INK_PIXELS = 6
#: Degree of the polynomial surface modelling uneven lighting (2 = gradients and vignetting).
BACKGROUND_DEGREE = 2

_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_UPLOAD_HINT = f"Upload a {_FORMATS_FOR_PEOPLE} picture of a single handwritten digit."


class UnusableImageError(ValueError):
    """The upload cannot be turned into a digit; `str(err)` is a message for the user."""


# ==============================================================================================
# Public API
# ==============================================================================================
def prepare_digit(data: bytes) -> np.ndarray:
    """Decode an uploaded image file and normalise its digit the way MNIST was made.

    Args:
        data: the raw bytes of a PNG, JPEG, GIF, WebP or BMP file (bytearray/memoryview also ok).

    Returns:
        float32 array [28, 28] in [0, 1]: white digit on black, longer side of the ink 20 px,
        intensity centre of mass at (row 14, col 14) (to the nearest pixel), max exactly 1.0.

    Raises:
        UnusableImageError: for anything that is not a usable picture of a digit.
    """
    raw = _check_bytes(data)
    try:
        gray = _decode_to_gray(raw)
        ink = _extract_ink(gray)
        return _mnist_normalise(ink)
    except UnusableImageError:
        raise
    except Exception as exc:  # why: the contract is that no raw exception reaches the UI
        logger.exception("unexpected failure while preparing an uploaded digit")
        raise UnusableImageError(
            "This image could not be processed. " + _UPLOAD_HINT
        ) from exc


# ==============================================================================================
# Decoding
# ==============================================================================================
def _check_bytes(data: object) -> bytes:
    """Refuse non-bytes, empty and oversized inputs before anything is decoded."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise UnusableImageError(
            f"Expected the contents of an image file, got {type(data).__name__}. " + _UPLOAD_HINT
        )
    if not data:
        raise UnusableImageError("The file is empty. " + _UPLOAD_HINT)
    if len(data) > MAX_FILE_BYTES:
        raise UnusableImageError(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB. "
            "Upload a smaller image (a picture cropped around the digit is plenty)."
        )
    return data


def _decode_to_gray(raw: bytes) -> np.ndarray:
    """Decode frame 0 of an accepted image, upright, as grayscale at working size.

    Memory is bounded whatever the file: the decode's cost is estimated from the header and refused
    above MAX_DECODE_BYTES; JPEGs decode at a reduced scale; the grey conversion runs in strips
    reduced as they go; EXIF orientation is applied to the reduced picture.

    Returns:
        float32 [H, W] in [0, 1] (0 = black), longer side <= WORK_MAX_SIDE.
    """
    try:
        # `formats` restricts which decoders Pillow even tries: no TIFF, PSD, EPS (Ghostscript) ...
        with Image.open(io.BytesIO(raw), formats=_OPEN_FORMATS) as img:
            if img.format not in ACCEPTED_FORMATS:  # belt and braces: a plugin could re-label
                raise UnusableImageError(
                    f"Images in {img.format} format are not supported. " + _UPLOAD_HINT
                )
            _check_dimensions(img.size)
            full_size = img.size
            if img.format in ("JPEG", "MPO"):
                # why: lets libjpeg decode at 1/2..1/8 scale, so a 40 MP photo never needs 40 MP
                # of memory; the result is still >= working size.
                img.draft(img.mode, _working_size(img.size))
            cost = decode_bytes(img, full_size)
            if cost > MAX_DECODE_BYTES:
                raise UnusableImageError(_too_large_to_decode(img, full_size, cost))
            with _decode_turn(cost):
                img.load()  # frame 0 of an animation: Image.open leaves the first frame current
                # why after load, inside the turn: a PNG's getexif() loads the pixels itself (its
                # eXIf chunk may follow them), which outside the turn made waiting uploads decode.
                orientation = _exif_orientation(img)
                gray = _reduced_gray(img)
            gray = _upright(gray, orientation)
    except UnusableImageError:
        raise
    except UnidentifiedImageError as exc:
        raise UnusableImageError(
            "This file is not an image in a supported format. " + _UPLOAD_HINT
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # why: DecompressionBombError is NOT an OSError; Pillow raises it from open() for sizes
        # far above its own limit (our header check handles the rest).
        raise UnusableImageError(
            f"The image claims to be enormous (over {MAX_PIXELS // 1_000_000} megapixels), "
            "more than can be processed safely. Upload a smaller image."
        ) from exc
    except MemoryError as exc:
        raise UnusableImageError("The image is too large to process. Upload a smaller image.") from exc
    except Exception as exc:  # OSError (truncated), SyntaxError, ValueError, struct.error ...
        raise UnusableImageError(
            "The image file is damaged or incomplete and could not be decoded. "
            "Re-save or re-export it, then upload it again as a " + _FORMATS_FOR_PEOPLE + " file."
        ) from exc
    return _to_working_array(gray)


def _check_dimensions(size: tuple[int, int]) -> None:
    """Refuse bombs, slivers and thumbnails from the header size (w, h), before decoding."""
    w, h = size
    if w < 1 or h < 1:
        raise UnusableImageError("The image has no pixels. " + _UPLOAD_HINT)
    if w * h > MAX_PIXELS:
        raise UnusableImageError(
            f"The image is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS // 1_000_000} megapixels. Upload a smaller image."
        )
    if min(w, h) < MIN_SIDE:
        raise UnusableImageError(
            f"The image is only {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed. "
            "Upload a larger picture of the digit."
        )
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise UnusableImageError(
            f"The image is {w}x{h} pixels, a long thin strip (more than {MAX_ASPECT:.0f}:1). "
            "Crop the picture roughly square around the digit and upload it again."
        )


# ---- What a decode costs ----------------------------------------------------------------------
#: Bytes per pixel of Pillow's frame by mode (Pillow keeps 3-channel and 2-channel modes in 4 bytes).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
_TWO_BYTE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
#: WebP: libwebp decodes the frame into its own buffer, Pillow copies it to bytes and then into the
#: frame: 16.5 bytes per pixel measured (Pillow 13, lossless and lossy alike).
_WEBP_BYTES_PER_PIXEL = 17
#: A progressive JPEG keeps every DCT coefficient of the whole picture (2 bytes each) until its last
#: scan, whatever scale it is decoded at: 3 bytes per pixel at 4:2:0, 6 at 4:4:4 (measured).
_COEFFICIENT_BYTES = 2


def _frame_bytes_per_pixel(mode: str) -> int:
    return 1 if mode in _ONE_BYTE_MODES else 2 if mode in _TWO_BYTE_MODES else 4


def decode_bytes(img: Image.Image, full_size: tuple[int, int] | None = None) -> int:
    """Estimated peak bytes to decode the opened (not yet loaded) picture `img`, from its header.

    Args:
        img: as Image.open returns it; for a JPEG after `draft` (img.size is then the reduced size).
        full_size: (w, h) before `draft`; default img.size.
    """
    w, h = img.size
    fw, fh = full_size or img.size
    frame = w * h * _frame_bytes_per_pixel(img.mode)
    if img.format == "WEBP":
        return fw * fh * _WEBP_BYTES_PER_PIXEL
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        layers = getattr(img, "layer", None) or [("", 1, 1, 0)] * 3
        hmax = max(int(lay[1]) for lay in layers) or 1
        vmax = max(int(lay[2]) for lay in layers) or 1
        blocks = sum(math.ceil(fw * int(lay[1]) / hmax / 8) * math.ceil(fh * int(lay[2]) / vmax / 8) for lay in layers)
        return frame + blocks * 64 * _COEFFICIENT_BYTES
    return frame


def _too_large_to_decode(img: Image.Image, full_size: tuple[int, int], cost: int) -> str:
    """The message for a picture whose decode would cost more than MAX_DECODE_BYTES."""
    w, h = full_size
    mp = w * h / 1e6
    fits = mp * MAX_DECODE_BYTES / cost  # megapixels of this kind that fit
    kind = {"WEBP": "WebP pictures", "JPEG": "progressive JPEGs", "MPO": "progressive JPEGs"}.get(
        img.format or "", "colour or 16-bit pictures in this format")
    return (
        f"The image is {w}x{h} pixels ({mp:.0f} megapixels); {kind} are processed up to about "
        f"{max(1, math.floor(fits))} megapixels. Scale it down (a digit needs far fewer pixels: "
        "2000 pixels across is plenty) or save it as an ordinary JPEG, then upload it again."
    )


_large_decodes = threading.BoundedSemaphore(LARGE_DECODES_AT_ONCE)


@contextlib.contextmanager
def _decode_turn(cost: int) -> Iterator[None]:
    """Hold one of the LARGE_DECODES_AT_ONCE turns while decoding a picture costing `cost` bytes
    (> LARGE_DECODE_BYTES); smaller decodes go straight through. Refuses as "busy" after
    LARGE_DECODE_WAIT_S seconds without a turn."""
    if cost <= LARGE_DECODE_BYTES:
        yield
        return
    if not _large_decodes.acquire(timeout=LARGE_DECODE_WAIT_S):
        raise UnusableImageError(
            "The server is busy with other large pictures. Try again in a minute, or upload a "
            "smaller picture (a photo cropped around the digit is plenty)."
        )
    try:
        yield
    finally:
        _large_decodes.release()


# ---- Conversion at working size ---------------------------------------------------------------
def _working_size(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) scaled down so the longer side is at most WORK_MAX_SIDE (never scaled up)."""
    w, h = size
    f = min(1.0, WORK_MAX_SIDE / max(w, h))
    return max(1, round(w * f)), max(1, round(h * f))


_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag (phones store photos sideways plus this tag); 1 (upright) if absent."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if isinstance(value, int) else 1
    except Exception:  # why: a corrupt EXIF block should not cost the user a readable photo
        logger.warning("ignoring unreadable EXIF orientation", exc_info=True)
        return 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    """`img` turned as EXIF `orientation` says (what ImageOps.exif_transpose does, here applied to
    the reduced grey picture: on the full-size frame it would be a second full-size copy)."""
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return img.transpose(method) if method is not None else img


def _reduced_gray(img: Image.Image) -> Image.Image:
    """A loaded picture of any mode -> mode "L", reduced by a whole factor k to at least working size.

    Converted in horizontal strips of about STRIP_PIXELS, each reduced (box average of k x k) as
    soon as it is grey; strips are a multiple of k rows high, so the result equals reducing the
    whole grey picture. So beside the decoded frame only one strip's copies exist at a time.
    """
    w, h = img.size
    k = max(1, max(w, h) // WORK_MAX_SIDE)
    levels = _levels(img) if img.mode in _HIGH_DEPTH_MODES else None
    rows = max(k, STRIP_PIXELS // max(w, 1) // k * k)
    if rows >= h:
        gray = _to_gray_u8(img, levels)
        return gray.reduce(k) if k > 1 else gray
    out = Image.new("L", (math.ceil(w / k), math.ceil(h / k)))
    for top in range(0, h, rows):
        strip = _to_gray_u8(img.crop((0, top, w, min(h, top + rows))), levels)
        out.paste(strip.reduce(k) if k > 1 else strip, (0, top // k))
    return out


def _strips(img: Image.Image) -> Iterator[Image.Image]:
    """The picture as horizontal strips of about STRIP_PIXELS (copies, one at a time)."""
    w, h = img.size
    rows = max(1, STRIP_PIXELS // max(w, 1))
    for top in range(0, h, rows):
        yield img.crop((0, top, w, min(h, top + rows)))


def _finite(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)


def _levels(img: Image.Image) -> tuple[float, float]:
    """(lowest, highest) finite value of a high-bit-depth picture (I;16*, I, F), read in strips."""
    lo, hi = math.inf, -math.inf
    for strip in _strips(img):
        a = _finite(np.asarray(strip, dtype=np.float64))
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return lo, hi


def _to_gray_u8(img: Image.Image, levels: tuple[float, float] | None = None) -> Image.Image:
    """Any Pillow mode -> mode "L" (8-bit gray), transparency composited onto white.

    High bit depths (I;16*, I, F) are stretched to 0..255 first: `convert("L")` would clip them
    (a 16-bit value of 1000 becomes 255, i.e. the whole image turns white). `levels` is the
    (lowest, highest) value to stretch between (the whole picture's, when this is one strip of it);
    default this picture's own.
    """
    if img.mode in _HIGH_DEPTH_MODES:
        a = _finite(np.asarray(img, dtype=np.float64))
        # why min-max rather than /65535: 12-bit sensors and float images use any range; the
        # ink detection downstream only cares about relative levels.
        lo, hi = levels if levels is not None else (float(a.min()), float(a.max()))
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(np.round(np.clip(a, 0.0, 255.0)).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        # why: transparent pixels carry arbitrary (often black) colour under alpha 0; a drawing
        # exported with a transparent background would otherwise become a black sheet.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if img.mode not in ("L", "RGB", "P", "1"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB ...: via RGB, which every mode supports
    return img.convert("L")


def _to_working_array(gray: Image.Image) -> np.ndarray:
    """Mode "L" image -> float32 [H, W] in [0, 1], area-averaged down to working size."""
    size = _working_size(gray.size)
    if size != gray.size:
        gray = gray.resize(size, Image.Resampling.BOX)  # BOX = area average: anti-aliased
    return np.asarray(gray, dtype=np.float32) / 255.0


# ==============================================================================================
# Ink extraction
# ==============================================================================================
def _extract_ink(gray: np.ndarray) -> np.ndarray:
    """Find the digit in a grayscale picture and return it as a soft white-on-black stroke.

    Args:
        gray: float32 [H, W] in [0, 1].

    Returns:
        float32 [H, W] in [0, 1]: 0 on background, ~1 on the stroke core, soft edges.
    """
    background, sigma = _fit_background(gray)
    resid = gray - background
    ink = _ink_polarity(resid, sigma)  # ink now bright, background ~0, whichever way it came
    _require_contrast(ink, sigma)
    threshold = max(_otsu_threshold(ink), 3.0 * sigma, 0.5 * MIN_INK_CONTRAST)
    mask = _drop_specks(ink > threshold)
    if mask.sum() < MIN_INK_PIXELS:
        raise UnusableImageError(_blank_message())
    return _soft_stroke(ink, mask, threshold)


def _poly_powers(degree: int) -> list[tuple[int, int]]:
    """Exponents (i, j) of the polynomial terms x^i y^j with i + j <= degree, in a fixed order."""
    return [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]


def _unit_coords(n: int) -> np.ndarray:
    """Pixel coordinates 0..n-1 scaled to [-1, 1] (float64 [n])."""
    return np.arange(n) / max(n - 1, 1) * 2.0 - 1.0


def _robust_sigma(r: np.ndarray) -> float:
    """Noise standard deviation from the median absolute deviation (robust to ink outliers)."""
    if r.size == 0:
        return 1.0 / 255.0
    return max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 0.5 / 255.0)


def _poly_surface(coef: np.ndarray, degree: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The polynomial sum_k coef[k] x^i y^j ((i, j) = _poly_powers(degree)[k]) on the grid of
    row coordinates y [R] and column coordinates x [C]: float64 [R, C].

    A sum of outer products, so no [R*C, T] design matrix is ever built.
    """
    out = np.zeros((y.size, x.size))
    for c, (i, j) in zip(coef, _poly_powers(degree)):
        out += (c * y**j)[:, None] * (x**i)[None, :]
    return out


def _poly_lstsq(vals: np.ndarray, keep: np.ndarray, y: np.ndarray, x: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares coefficients (order of _poly_powers) of a polynomial surface fitted to the
    samples vals[keep], on the grid of row coordinates y [R] and column coordinates x [C].

    Args:
        vals: float64 [R, C]; keep: bool [R, C], the samples to fit.

    Solved through the normal equations, whose entries are moments sum(y^q x^p) over the kept
    samples; on a grid each is two small contractions (np.einsum: no BLAS). Why not
    `np.linalg.lstsq` on the [R*C, T] design: with OpenBLAS's threads that took 70 ms on a
    busy machine (17 ms on one thread); this takes well under 1 ms. The terms of a low-degree
    surface on [-1, 1] are well conditioned, so squaring the condition number costs nothing
    visible, and `lstsq` on the T x T system keeps the minimum-norm answer should the kept
    samples ever be degenerate.
    """
    powers = _poly_powers(degree)
    k = np.arange(2 * degree + 1)
    ypow, xpow = y[:, None] ** k, x[:, None] ** k  # [R, 2d+1], [C, 2d+1]
    w = keep.astype(np.float64)
    moments = np.einsum("rq,rp->qp", ypow, np.einsum("rc,cp->rp", w, xpow))  # [q, p]: y^q x^p
    weighted = np.einsum("rq,rp->qp", ypow, np.einsum("rc,cp->rp", w * vals, xpow))
    gram = np.array([[moments[ja + jb, ia + ib] for ib, jb in powers] for ia, ja in powers])
    rhs = np.array([weighted[j, i] for i, j in powers])
    return np.linalg.lstsq(gram, rhs, rcond=None)[0]


def _fit_background(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Model paper + lighting as a smooth polynomial surface fitted to non-ink pixels.

    Starts from the border (the background by assumption: people photograph a digit in the
    middle), then iteratively refits on every pixel within 3 sigma of the surface, so strokes of
    any thickness are excluded and lighting gradients / vignetting are followed.

    Returns:
        background: float32 [H, W]; sigma: robust noise level of the background (0..1 units).
    """
    h, w = gray.shape
    step = max(1, max(h, w) // 128)  # fit on a <= 128x128 subsample: plenty for a smooth surface
    rows, cols = np.arange(0, h, step), np.arange(0, w, step)  # the sampled pixels
    y, x = _unit_coords(h)[::step], _unit_coords(w)[::step]
    vals = gray[::step, ::step].astype(np.float64)  # [R, C]
    band = max(1, round(0.05 * min(h, w)))
    border = ((rows < band) | (rows >= h - band))[:, None] | ((cols < band) | (cols >= w - band))[None, :]

    keep, coef, degree = border, None, 0
    for stage_degree, rounds in ((1, 3), (BACKGROUND_DEGREE, 4)):
        for _ in range(rounds):
            if keep.sum() < len(_poly_powers(stage_degree)) * 3:  # too few samples for this surface
                break
            coef, degree = _poly_lstsq(vals, keep, y, x, stage_degree), stage_degree
            resid = vals - _poly_surface(coef, degree, y, x)
            keep = np.abs(resid) <= 3.0 * _robust_sigma(resid[keep])
    if coef is None:  # cannot happen for images >= MIN_SIDE, but never fit on nothing
        coef, degree = np.array([float(np.median(vals))]), 0
    resid = (vals - _poly_surface(coef, degree, y, x)).ravel()
    sigma = _robust_sigma(resid[np.abs(resid) <= 3.0 * _robust_sigma(resid)])

    full = _poly_surface(coef, degree, _unit_coords(h), _unit_coords(w))
    return full.astype(np.float32), sigma


def _ink_polarity(resid: np.ndarray, sigma: float) -> np.ndarray:
    """Return the residual with ink positive: [H, W] float32 >= 0.

    Ink is whichever side of the background has the heavier tail beyond 3 sigma: a dark digit
    on paper is a heavy negative tail, a light digit on a dark board a heavy positive one.
    """
    dark = float(np.clip(-resid - 3.0 * sigma, 0.0, None).sum())
    light = float(np.clip(resid - 3.0 * sigma, 0.0, None).sum())
    ink = -resid if dark > light else resid
    return np.clip(ink, 0.0, None).astype(np.float32)


def _require_contrast(ink: np.ndarray, sigma: float) -> None:
    """Raise if nothing stands out from the background (blank, uniform or pure noise)."""
    from scipy import ndimage  # lazy: see the imports at the top

    # why the 3x3 mean: a single hot pixel is noise, a stroke survives averaging
    peak = float(ndimage.uniform_filter(ink, size=3).max()) if min(ink.shape) >= 3 else float(ink.max())
    if peak < max(MIN_INK_CONTRAST, NOISE_SIGMAS * sigma):
        raise UnusableImageError(_blank_message())


def _blank_message() -> str:
    return (
        "No digit found: the image looks blank or nearly uniform. Upload a picture of one "
        "digit, dark on light paper or light on a dark background, filling a good part of the frame."
    )


def _otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold (1979): the level that maximises the between-class variance."""
    top = float(values.max())
    if top <= 0.0:
        return 0.0
    hist, edges = np.histogram(values, bins=256, range=(0.0, top))
    p = hist.astype(np.float64) / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2.0
    w0 = np.cumsum(p)
    m = np.cumsum(p * centres)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m[-1] * w0 - m) ** 2 / (w0 * w1)
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    return float(edges[int(np.argmax(between)) + 1])


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """Keep the digit's blobs, drop dust and paper texture: [H, W] bool -> [H, W] bool.

    Blobs are grouped after a small dilation so a stroke broken by uneven ink stays one blob;
    groups with less than SPECK_FRACTION of the largest group's ink are removed.
    """
    from scipy import ndimage  # lazy: see the imports at the top

    if not mask.any():
        return mask
    link = max(1, round(0.01 * max(mask.shape)))
    grouped = ndimage.binary_dilation(mask, iterations=link)
    labels, n = ndimage.label(grouped, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return mask
    ink_per_label = np.bincount(labels[mask], minlength=n + 1)
    ink_per_label[0] = 0
    keep = ink_per_label >= SPECK_FRACTION * ink_per_label.max()
    return mask & keep[labels]


def _soft_stroke(ink: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    """Anti-aliased stroke: ink scaled so its typical level is 1, limited to near the mask.

    A pure binary mask would lose the anti-aliased edges MNIST has; scaling by the median ink
    level makes faint pencil and dark marker alike. Returns float32 [H, W] in [0, 1].
    """
    from scipy import ndimage  # lazy: see the imports at the top

    level = float(np.median(ink[mask]))
    floor = 0.5 * threshold  # below half the threshold it is background texture, not edge
    soft = np.clip((ink - floor) / max(level - floor, 1e-6), 0.0, 1.0)
    support = ndimage.binary_dilation(mask, iterations=1)  # keep the 1-px anti-aliased rim
    return (soft * support).astype(np.float32)


# ==============================================================================================
# MNIST normalisation
# ==============================================================================================
def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right), exclusive ends, of the non-zero pixels of [H, W]."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a [H, W] bool mask: 2 * area / boundary length.

    A stroke of width w and length L has area w*L and about 2L boundary pixels.
    """
    from scipy import ndimage  # lazy: see the imports at the top

    area = int(mask.sum())
    boundary = area - int(ndimage.binary_erosion(mask).sum())
    return 2.0 * area / max(boundary, 1)


def _thicken(ink: np.ndarray) -> np.ndarray:
    """Dilate thin strokes so that after the 20 px fit they are about TARGET_STROKE_PX wide.

    A pen line on a large photo would shrink to a faint sub-pixel trace, unlike MNIST's strokes.
    """
    top, bottom, left, right = _ink_box(ink)
    scale = MNIST_BOX / max(bottom - top, right - left)
    width_out = _stroke_width(ink > 0.5) * scale
    if width_out >= THIN_STROKE_PX:
        return ink
    radius = round((TARGET_STROKE_PX - width_out) / scale / 2.0)
    if radius < 1:
        return ink
    return _dilate_disk(ink, (top, bottom, left, right), radius)


def _dilate_disk(ink: np.ndarray, box: tuple[int, int, int, int], radius: int) -> np.ndarray:
    """Grey dilation of [H, W] ink >= 0 (zero outside `box`) by a disk of `radius` pixels.

    Equal to `ndimage.grey_dilation(ink, footprint=disk)`, only faster: the work is limited to
    the box plus the radius (the rest stays 0), and the disk is done row by row, as the maximum
    over row offsets dy of a 1-D running maximum of half-width floor(sqrt(r^2 - dy^2)).
    (The image edge cannot matter: ink is >= 0, and a mirrored neighbour of a disk is in it.)
    """
    from scipy import ndimage  # lazy: see the imports at the top

    top, bottom, left, right = box
    h, w = ink.shape
    r = radius
    # zero-padded copy of the box, with room for the disk on every side
    pad = np.zeros((bottom - top + 2 * r, right - left + 2 * r), dtype=ink.dtype)
    pad[r:-r, r:-r] = ink[top:bottom, left:right]
    n = pad.shape[0]
    out = np.zeros_like(pad)
    row_max: dict[int, np.ndarray] = {}
    for dy in range(-r, r + 1):
        half = math.isqrt(r * r - dy * dy)  # the disk's row dy: |dx| <= half
        if half not in row_max:
            row_max[half] = ndimage.maximum_filter1d(pad, 2 * half + 1, axis=1, mode="constant", cval=0.0)
        m = row_max[half]
        # out[i] = max(out[i], m[i + dy]) where i + dy is inside
        lo, hi = max(0, -dy), n - max(0, dy)
        np.maximum(out[lo:hi], m[lo + dy : hi + dy], out=out[lo:hi])
    result = np.zeros_like(ink)
    t0, l0 = top - r, left - r  # image position of pad[0, 0]
    ys, ye = max(0, t0), min(h, bottom + r)
    xs, xe = max(0, l0), min(w, right + r)
    result[ys:ye, xs:xe] = out[ys - t0 : ye - t0, xs - l0 : xe - l0]
    return result


def _check_ink_shape(box: tuple[int, int, int, int]) -> None:
    """Refuse ink that is a line (a ruled line or page edge, not a digit)."""
    top, bottom, left, right = box
    h, w = bottom - top, right - left
    if max(h, w) / min(h, w) > MAX_INK_ASPECT:
        raise UnusableImageError(
            "The only marks found form a long thin line, not a digit. Upload a picture "
            "of a single digit, cropped so that no ruled lines or page edges show."
        )


def _mnist_normalise(ink: np.ndarray) -> np.ndarray:
    """Soft ink [H, W] -> MNIST [28, 28] float32: fit 20x20 box, centre of mass at (14, 14)."""
    from scipy import ndimage  # lazy: see the imports at the top

    _check_ink_shape(_ink_box(ink))
    ink = _thicken(ink)
    top, bottom, left, right = _ink_box(ink)
    crop = ink[top:bottom, left:right]
    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (w, h)
    # LANCZOS on the float crop: anti-aliased whether shrinking a photo or enlarging a thumbnail
    small = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, 1.0)
    if small.max() <= 0.0:
        raise UnusableImageError(_blank_message())

    # Centre of mass to (14, 14) by an integer shift, as MNIST did (its centroids scatter
    # +-0.29 px around (14, 14): the spread of rounding), clipped so nothing is cut off.
    cy, cx = ndimage.center_of_mass(small)
    ph, pw = small.shape
    top = int(np.clip(round(MNIST_SIZE / 2 - cy), 0, MNIST_SIZE - ph))
    left = int(np.clip(round(MNIST_SIZE / 2 - cx), 0, MNIST_SIZE - pw))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    out[top : top + ph, left : left + pw] = small
    return out / out.max()
