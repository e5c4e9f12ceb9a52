"""Tests for explorer.preprocess: MNIST-style normalisation of uploaded digit pictures.

All inputs are built in memory with Pillow (plus the committed samples in tests/assets/).
Regenerate those samples with `PYTHONPATH=. python tests/test_preprocess.py`.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from scipy import ndimage

from explorer.preprocess import (
    MAX_FILE_BYTES,
    MNIST_BOX,
    MNIST_SIZE,
    UnusableImageError,
    _dilate_disk,
    _fit_background,
    _ink_box,
    _to_gray_u8,
    prepare_digit,
)

ASSETS = Path(__file__).parent / "assets"

# A "7" as a polyline in unit coordinates (x, y), drawn with round joins.
SEVEN = [(0.22, 0.2), (0.75, 0.2), (0.68, 0.35), (0.45, 0.82)]
ONE = [(0.5, 0.15), (0.5, 0.85)]


# ----------------------------------------------------------------------------------------------
# Input builders
# ----------------------------------------------------------------------------------------------
def draw_digit(
    size: tuple[int, int] = (200, 200),
    stroke: list[tuple[float, float]] = SEVEN,
    width: int = 18,
    ink: int = 0,
    paper: int = 255,
    mode: str = "L",
) -> Image.Image:
    """A thick polyline digit, ink on paper: [h, w] image of the given mode."""
    w, h = size
    img = Image.new("L", size, paper)
    draw = ImageDraw.Draw(img)
    pts = [(x * w, y * h) for x, y in stroke]
    draw.line(pts, fill=ink, width=width, joint="curve")
    for x, y in pts:  # round caps
        r = width / 2
        draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    return img.convert(mode)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def make_photo(seed: int = 0, size: int = 360, quality: int = 80) -> bytes:
    """A synthetic phone photo of a dark pen "7" on grayish paper.

    Strong diagonal lighting gradient with vignetting, low-frequency paper mottling, fibres,
    sensor noise, slightly uneven ink, a soft blur and JPEG compression. RGB JPEG bytes.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    light = 0.45 + 0.5 * (0.3 * xx + 0.7 * (1 - yy))  # bright top, dim bottom
    light *= 1.0 - 0.35 * ((xx - 0.55) ** 2 + (yy - 0.45) ** 2)  # vignetting
    mottle = np.asarray(
        Image.fromarray(rng.normal(0, 1, (12, 12)).astype(np.float32)).resize(
            (size, size), Image.Resampling.BICUBIC
        )
    )
    paper = 0.86 + 0.02 * mottle
    fibres = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(fibres)
    for _ in range(40):
        x, y = rng.uniform(0, size, 2)
        ang = rng.uniform(0, np.pi)
        ln = rng.uniform(3, 12)
        d.line([(x, y), (x + ln * np.cos(ang), y + ln * np.sin(ang))], fill=int(rng.uniform(20, 60)))
    paper = paper - np.asarray(fibres, dtype=np.float64) / 255.0 * 0.25

    # hand-drawn-looking stroke: jittered polyline, slightly varying pressure
    pts = []
    for (x0, y0), (x1, y1) in zip(SEVEN[:-1], SEVEN[1:]):
        for t in np.linspace(0, 1, 8, endpoint=False):
            pts.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    pts.append(SEVEN[-1])
    pts = [(x * size + rng.normal(0, 1.2), y * size + rng.normal(0, 1.2)) for x, y in pts]
    stroke = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(stroke)
    for (xa, ya), (xb, yb) in zip(pts[:-1], pts[1:]):
        wdt = int(rng.uniform(7, 10))
        d.line([(xa, ya), (xb, yb)], fill=int(rng.uniform(200, 255)), width=wdt)
        d.ellipse([xb - wdt / 2, yb - wdt / 2, xb + wdt / 2, yb + wdt / 2], fill=230)
    stroke = stroke.filter(ImageFilter.GaussianBlur(1.0))
    alpha = np.asarray(stroke, dtype=np.float64) / 255.0

    reflect = paper * (1 - 0.8 * alpha)  # ink absorbs ~80 % of the light
    value = light * reflect + rng.normal(0, 0.025, (size, size))
    tint = np.array([1.0, 0.97, 0.9])  # warm indoor light
    rgb = np.clip(value[..., None] * tint * 255, 0, 255).astype(np.uint8)
    return encode(Image.fromarray(rgb), "JPEG", quality=quality)


def png_header_only(width: int, height: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """A syntactically valid PNG whose IHDR claims width x height, with a tiny IDAT."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------------------------
# Output checks
# ----------------------------------------------------------------------------------------------
def assert_mnist_like(out: np.ndarray) -> None:
    """Shape, dtype, range, centre of mass at (14, 14), ink fits 20x20 with longer side ~20."""
    assert out.shape == (MNIST_SIZE, MNIST_SIZE)
    assert out.dtype == np.float32
    assert float(out.min()) >= 0.0 and float(out.max()) == pytest.approx(1.0)
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0, (cy, cx)
    rows = np.flatnonzero((out > 0.05).any(axis=1))
    cols = np.flatnonzero((out > 0.05).any(axis=0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(h, w) <= MNIST_BOX + 1
    assert max(h, w) >= MNIST_BOX - 2
    # white-on-black: mostly dark, corners empty. (Not the whole border: centring by mass puts
    # a 7's tail on the bottom rows, as in MNIST itself, where 64 % of test-set 7s touch them.)
    corners = [out[:3, :3], out[:3, -3:], out[-3:, :3], out[-3:, -3:]]
    assert max(float(c.max()) for c in corners) < 0.1
    assert out.mean() < 0.3


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def clean7() -> np.ndarray:
    return prepare_digit(encode(draw_digit(), "PNG"))


def clean_box(out: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((out > 0.05).any(axis=1))
    cols = np.flatnonzero((out > 0.05).any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def raises_unusable(data: object) -> str:
    """Assert prepare_digit raises exactly UnusableImageError; return its message."""
    with pytest.raises(UnusableImageError) as info:
        prepare_digit(data)  # type: ignore[arg-type]
    assert type(info.value) is UnusableImageError
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert len(msg) > 20
    return msg


# ----------------------------------------------------------------------------------------------
# MNIST normalisation of clean drawings
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stroke", [SEVEN, ONE], ids=["seven", "one"])
def test_black_digit_on_white_becomes_centred_white_on_black(stroke) -> None:
    out = prepare_digit(encode(draw_digit(stroke=stroke), "PNG"))
    assert_mnist_like(out)
    # the strokes are the bright pixels: the 7's top bar is in the upper part of the image
    if stroke is SEVEN:
        top, bottom, left, right = clean_box(out)
        assert out[top : top + 3, left + 2 : right - 2].mean() > 0.6
        # not mirrored or flipped: the bar turns down on the right; left, below the bar, is empty
        assert out[top + 2 : top + 5, right - 3 : right + 1].max() > 0.8
        assert out[top + 5 : top + 10, left : left + 4].max() < 0.1


def test_one_is_tall_and_narrow(clean7: np.ndarray) -> None:
    out = prepare_digit(encode(draw_digit(stroke=ONE), "PNG"))
    top, bottom, left, right = clean_box(out)
    assert bottom - top + 1 >= MNIST_BOX - 1
    assert right - left + 1 <= 6


def test_white_digit_on_black_gives_the_same_output(clean7: np.ndarray) -> None:
    inverted = prepare_digit(encode(draw_digit(ink=255, paper=0), "PNG"))
    assert np.abs(inverted - clean7).max() < 0.05


def test_digit_anywhere_in_a_large_canvas_is_cropped_scaled_and_centred(clean7: np.ndarray) -> None:
    small = draw_digit(size=(120, 120), width=11)
    canvas = Image.new("L", (900, 600), 255)
    canvas.paste(small, (680, 40))  # top-right corner
    out = prepare_digit(encode(canvas, "PNG"))
    assert_mnist_like(out)
    assert corr(out, clean7) > 0.9


def test_specks_are_removed(clean7: np.ndarray) -> None:
    img = draw_digit()
    d = ImageDraw.Draw(img)
    for x, y in [(8, 8), (190, 185), (15, 170), (185, 110)]:  # dust far outside the digit
        d.ellipse([x - 1, y - 1, x + 1, y + 1], fill=0)
    out = prepare_digit(encode(img, "PNG"))
    assert clean_box(out) == clean_box(clean7)
    assert corr(out, clean7) > 0.98


def test_thin_pen_strokes_are_thickened_to_mnist_width() -> None:
    out = prepare_digit(encode(draw_digit(size=(400, 400), width=2), "PNG"))
    assert_mnist_like(out)
    mask = out > 0.5
    boundary = mask.sum() - ndimage.binary_erosion(mask).sum()
    assert 2 * mask.sum() / boundary >= 1.8  # a 2 px line on 400 px would be ~0.15 px unthickened
    assert out.sum() > 40  # MNIST digits carry ~95 units of ink on average


def test_output_keeps_soft_antialiased_edges(clean7: np.ndarray) -> None:
    grey = ((clean7 > 0.05) & (clean7 < 0.95)).sum()
    assert grey >= 10  # not a binary image


# ----------------------------------------------------------------------------------------------
# Formats, modes, orientation, animation
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_each_accepted_format_decodes(fmt: str, clean7: np.ndarray) -> None:
    img = draw_digit(mode="RGB")
    out = prepare_digit(encode(img, fmt))
    assert_mnist_like(out)
    assert corr(out, clean7) > 0.95


def test_format_is_read_from_content_not_name() -> None:
    # a valid TIFF is an image, but not an accepted format: refused whatever it is called
    msg = raises_unusable(encode(draw_digit(), "TIFF"))
    assert "PNG" in msg and "JPEG" in msg


def test_rgba_transparent_background_is_composited_on_white(clean7: np.ndarray) -> None:
    alpha = ImageOps.invert(draw_digit())  # opaque where the stroke is
    rgba = Image.new("RGBA", alpha.size, (0, 0, 0, 0))  # black under full transparency
    rgba.putalpha(alpha)
    out = prepare_digit(encode(rgba, "PNG"))
    assert_mnist_like(out)
    assert corr(out, clean7) > 0.98


def test_la_transparent_background_is_composited_on_white(clean7: np.ndarray) -> None:
    alpha = ImageOps.invert(draw_digit())
    la = Image.merge("LA", (Image.new("L", alpha.size, 0), alpha))
    out = prepare_digit(encode(la, "PNG"))
    assert corr(out, clean7) > 0.98


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparent_index_is_composited_on_white(fmt: str, clean7: np.ndarray) -> None:
    stroke = np.asarray(draw_digit()) < 128
    p = Image.fromarray(stroke.astype(np.uint8), mode="L").convert("P")
    p.putpalette([0, 0, 0, 0, 0, 0])  # both entries black: only transparency tells them apart
    out = prepare_digit(encode(p, fmt, transparency=0))
    assert corr(out, clean7) > 0.95


@pytest.mark.parametrize("ink,paper", [(300, 1000), (20_000, 60_000)])
def test_16_bit_grayscale_is_rescaled_not_clipped(ink: int, paper: int, clean7: np.ndarray) -> None:
    # both levels are > 255: a plain convert("L") clips them to 255, i.e. a blank white image
    a = np.where(np.asarray(draw_digit()) < 128, ink, paper).astype(np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"  # really a 16-bit file
    out = prepare_digit(data)
    assert corr(out, clean7) > 0.98


@pytest.mark.parametrize(
    "mode,values", [("F", (-3.5, 7.25)), ("I", (0, 100_000)), ("I;16", (10, 900))]
)
def test_high_bit_depth_modes_are_stretched_to_8_bit(mode: str, values: tuple) -> None:
    stroke = np.asarray(draw_digit()) < 128
    lo, hi = values
    a = np.where(stroke, lo, hi)
    img = Image.fromarray(a.astype({"F": np.float32, "I": np.int32, "I;16": np.uint16}[mode]))
    assert img.mode == mode
    gray = np.asarray(_to_gray_u8(img))
    assert gray.dtype == np.uint8
    assert gray[stroke].max() == 0 and gray[~stroke].min() == 255


def test_exif_orientation_is_applied() -> None:
    upright = draw_digit(mode="RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone writes with Orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = prepare_digit(encode(stored, "JPEG", exif=exif, quality=95))
    reference = prepare_digit(encode(upright, "JPEG", quality=95))
    assert np.abs(tagged - reference).mean() < 0.02
    assert corr(tagged, reference) > 0.97


def test_animated_gif_uses_the_first_frame(clean7: np.ndarray) -> None:
    frames = [draw_digit(), draw_digit(stroke=ONE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = prepare_digit(data)
    assert corr(out, clean7) > 0.95


def test_large_photo_is_worked_on_at_a_bounded_size_and_correct(monkeypatch) -> None:
    # Speed is the benchmark's business (python -m bench). What bounds the cost, checked here: the
    # JPEG is decoded reduced (libjpeg draft, < 2x the working size, never the full 6 MP), every
    # per-pixel step then runs on the working size, and the result is still the digit.
    import explorer.preprocess as pre

    decoded: list[tuple[int, int]] = []
    worked: list[tuple[int, ...]] = []
    to_gray, extract = pre._to_gray_u8, pre._extract_ink
    monkeypatch.setattr(pre, "_to_gray_u8", lambda img, *levels: decoded.append(img.size) or to_gray(img, *levels))
    monkeypatch.setattr(pre, "_extract_ink", lambda gray: worked.append(gray.shape) or extract(gray))

    big = draw_digit(size=(3000, 2000), width=200, mode="RGB")
    out = prepare_digit(encode(big, "JPEG", quality=85))
    ((w, h),) = decoded
    assert w * h <= 3000 * 2000 / 16 and max(w, h) < 2 * pre.WORK_MAX_SIDE
    assert worked == [(341, 512)]  # (h, w): the longer side is WORK_MAX_SIDE, the aspect kept
    assert_mnist_like(out)


def test_importing_the_module_does_not_load_scipy_ndimage() -> None:
    # the app imports explorer.preprocess at start-up; scipy.ndimage alone costs ~0.3 s there
    code = ("import sys, explorer.preprocess; "
            "print(sorted(m for m in sys.modules if m.startswith('scipy.ndimage')))")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("seed", range(6))
def test_disk_dilation_equals_scipy_grey_dilation(seed: int) -> None:
    # _dilate_disk works on the ink's box only, row by row: it must match the plain full-image
    # dilation exactly, also when the ink touches the image edges and the disk overhangs them
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(4, 90, 2))
        top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
        bottom, right = int(rng.integers(top + 1, h + 1)), int(rng.integers(left + 1, w + 1))
        ink = np.zeros((h, w), np.float32)
        size = (bottom - top, right - left)
        ink[top:bottom, left:right] = rng.uniform(0, 1, size) * (rng.uniform(size=size) < 0.15)
        ink[top, left] = ink[bottom - 1, right - 1] = 0.5  # the box is exactly top..bottom, left..right
        radius = int(rng.integers(1, 16))
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        expected = ndimage.grey_dilation(ink, footprint=yy**2 + xx**2 <= radius**2)
        got = _dilate_disk(ink, _ink_box(ink), radius)
        assert got.dtype == ink.dtype
        assert np.array_equal(got, expected), (h, w, top, bottom, left, right, radius)


@pytest.mark.parametrize("shape", [(360, 360), (200, 512), (9, 13)])
def test_background_fit_recovers_a_quadratic_lighting_surface(shape: tuple[int, int]) -> None:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    y, x = yy / (h - 1) * 2 - 1, xx / (w - 1) * 2 - 1
    surface = 0.6 + 0.1 * x - 0.15 * y + 0.05 * x * y - 0.08 * x**2 + 0.06 * y**2
    noise = np.random.default_rng(0).normal(0, 0.01, shape)
    background, sigma = _fit_background((surface + noise).astype(np.float32))
    assert background.shape == shape and background.dtype == np.float32
    assert np.abs(background - surface).max() < (0.01 if min(shape) > 100 else 0.03)
    assert 0.005 < sigma < 0.02


# ----------------------------------------------------------------------------------------------
# Photos: lighting, paper texture, noise
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_photo_with_uneven_lighting_matches_the_clean_digit(seed: int, clean7: np.ndarray) -> None:
    out = prepare_digit(make_photo(seed=seed, quality=70))
    assert_mnist_like(out)
    assert corr(out, clean7) > 0.8
    # background (well away from the clean strokes) stays black: lighting is not ink
    far = ~ndimage.binary_dilation(clean7 > 0.05, iterations=2)
    assert out[far].mean() < 0.01
    assert out[far].max() < 0.2


def test_photo_of_blank_paper_is_refused() -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:300, 0:300] / 299
    paper = (0.5 + 0.4 * xx) * 0.9 + rng.normal(0, 0.02, (300, 300))
    img = Image.fromarray(np.clip(paper * 255, 0, 255).astype(np.uint8))
    assert "No digit" in raises_unusable(encode(img, "JPEG", quality=75))


# ----------------------------------------------------------------------------------------------
# Unusable and hostile inputs
# ----------------------------------------------------------------------------------------------
BAD_INPUTS = {
    "random_bytes": (np.random.default_rng(0).bytes(4096), "not an image"),
    "text_file": (b"digit,label\n7,7\n" * 50, "not an image"),
    "truncated_png": (encode(draw_digit(), "PNG")[:300], "damaged"),
    "truncated_jpeg": (encode(draw_digit(), "JPEG")[:1200], "damaged"),
    "empty": (b"", "empty"),
    "blank_white": (encode(Image.new("L", (100, 100), 255), "PNG"), "No digit"),
    "blank_black": (encode(Image.new("L", (100, 100), 0), "PNG"), "No digit"),
    "uniform_gray_jpeg": (encode(Image.new("RGB", (100, 100), (128, 128, 128)), "JPEG"), "No digit"),
    "pure_noise": (
        encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (80, 80), dtype=np.uint8)), "PNG"),
        "No digit",
    ),
    "absurd_aspect": (encode(Image.new("L", (1000, 10), 255), "PNG"), "strip"),
    "tiny": (encode(Image.new("L", (3, 3), 0), "PNG"), "at least"),
    "ink_is_a_line": (encode(draw_digit(size=(400, 400), stroke=[(0.02, 0.5), (0.98, 0.5)], width=3), "PNG"), "line"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_unusable_inputs_raise_a_readable_error(name: str) -> None:
    data, expected = BAD_INPUTS[name]
    assert expected.lower() in raises_unusable(data).lower()


@pytest.mark.parametrize("value", ["a string", None, 42, [1, 2, 3], np.zeros(10, np.uint8), io.BytesIO(b"x")])
def test_non_bytes_input_is_refused(value: object) -> None:
    raises_unusable(value)


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = encode(draw_digit(), "PNG")
    assert prepare_digit(bytearray(data)).shape == (28, 28)  # type: ignore[arg-type]
    assert prepare_digit(memoryview(data)).shape == (28, 28)  # type: ignore[arg-type]


def test_oversized_file_is_refused_before_decoding() -> None:
    data = encode(draw_digit(), "PNG")
    data += b"\0" * (MAX_FILE_BYTES + 1 - len(data))
    assert "MB" in raises_unusable(data)


def patched_bmp(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (16, 16), 255), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)  # BITMAPINFOHEADER width, height
    return bytes(data)


@pytest.fixture
def pixel_loads(monkeypatch) -> list[str]:
    """Records every pixel decode (ImageFile.load) made while a test runs: "FORMAT (w, h)"."""
    from PIL import ImageFile

    calls: list[str] = []
    load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile):  # noqa: ANN202 - returns what Pillow's load returns
        calls.append(f"{self.format} {self.size}")
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def test_pixel_load_spy_sees_a_normal_decode(pixel_loads: list[str]) -> None:
    prepare_digit(encode(draw_digit(), "PNG"))  # so an empty record below does mean "never decoded"
    assert pixel_loads and set(pixel_loads) == {"PNG (200, 200)"}  # Pillow calls load() again once loaded


@pytest.mark.parametrize(
    "data",
    [
        png_header_only(100_000, 100_000),  # beyond Pillow's own bomb limit: DecompressionBombError
        png_header_only(8_000, 8_000, bit_depth=1),  # 64 MP: under Pillow's limit, over ours
        png_header_only(30_000, 30_000, color_type=3),
        patched_bmp(20_000, 20_000),
    ],
    ids=["png_10G", "png_64M_1bit", "png_palette_900M", "bmp_400M"],
)
def test_decompression_bombs_are_refused_from_the_header_with_little_memory(data: bytes, pixel_loads: list[str]) -> None:
    tracemalloc.start()
    try:
        assert "megapixels" in raises_unusable(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pixel_loads == []  # refused from the header: no pixel was decoded
    assert peak < 2**20  # and nothing of its size was allocated (the file itself is a few KB)


def test_a_real_compressed_bomb_is_refused(pixel_loads: list[str]) -> None:
    # 7000x7000 1-bit PNG of zeros: ~6 KB on disk, 49 MP once decoded
    rows = b"".join(b"\x00" + b"\x00" * (7000 // 8 + 1) for _ in range(7000))
    head = png_header_only(7000, 7000, bit_depth=1)
    idat = zlib.compress(rows, 9)
    chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    data = head[:33] + chunk + head[-12:]
    assert len(data) < 20_000
    assert "megapixels" in raises_unusable(data)
    assert pixel_loads == []  # refused from the header, not after inflating 49 MP


# ----------------------------------------------------------------------------------------------
# Memory: any one picture costs a bounded amount, whatever its format, bit depth, mode or size
# ----------------------------------------------------------------------------------------------
def _pillow_bytes(img: Image.Image) -> int:
    """Bytes of a Pillow image's pixels (Pillow keeps 2- and 3-channel modes in 4 bytes a pixel)."""
    per = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    return img.width * img.height * per


@pytest.fixture
def pillow_memory(monkeypatch) -> dict[str, list[int]]:
    """Spies on what one test decodes and makes: "frames" (bytes of each decoded frame, Pillow's
    load_prepare) and "made" (bytes of every other Pillow image: crops, conversions, reductions,
    composites, transposes, fromarray; Pillow makes them all through Image._new)."""
    from PIL import ImageFile

    seen: dict[str, list[int]] = {"frames": [], "made": []}
    prepare, new = ImageFile.ImageFile.load_prepare, Image.Image._new

    def spy_prepare(self: ImageFile.ImageFile) -> None:
        seen["frames"].append(_pillow_bytes(self))
        prepare(self)

    def spy_new(self: Image.Image, im) -> Image.Image:  # noqa: ANN001 - a Pillow ImagingCore
        out = new(self, im)
        seen["made"].append(_pillow_bytes(out))
        return out

    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", spy_prepare)
    monkeypatch.setattr(Image.Image, "_new", spy_new)
    return seen


def big_16_bit_png(side: int = 3000) -> bytes:
    """A side x side 16-bit greyscale PNG of a digit (a few tens of KB: it compresses well)."""
    return encode(Image.fromarray(np.asarray(draw_digit((side, side), width=side // 12), np.uint16) * 257), "PNG")


HOSTILE = {
    # kind: maker. Large enough that converting at full size would cost hundreds of MB.
    "16-bit grey": big_16_bit_png,
    "RGBA, transparent": lambda: encode(Image.merge("RGBA", [Image.new("L", (3000, 3000), 0)] * 3
                                                    + [ImageOps.invert(draw_digit((3000, 3000), width=250))]), "PNG"),
    "palette, transparent index": lambda: encode(draw_digit((3000, 3000), width=250).convert("P"), "PNG",
                                                 transparency=255),
    "8-bit grey": lambda: encode(draw_digit((4000, 4000), width=330), "PNG"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_large_picture_is_converted_in_strips_at_working_size(kind: str, pillow_memory, clean7) -> None:
    import explorer.preprocess as pre

    data = HOSTILE[kind]()
    pillow_memory["frames"].clear(), pillow_memory["made"].clear()  # only what prepare_digit does counts
    tracemalloc.start()
    try:
        out = prepare_digit(data)
        numpy_peak = tracemalloc.get_traced_memory()[1]  # NumPy's arrays are traced; Pillow's pixels are not
    finally:
        tracemalloc.stop()
    assert corr(out, clean7) > 0.9  # still the digit
    (frame,) = pillow_memory["frames"]
    assert frame <= pre.MAX_DECODE_BYTES
    # Beside the decoded frame, no Pillow image bigger than a strip (a colour strip: 4 bytes a pixel,
    # a strip may round up to whole reduction blocks): converting the 16 MP frame whole would make
    # 9-36 MB copies.
    assert max(pillow_memory["made"]) <= 2 * pre.STRIP_PIXELS * 4
    # NumPy works on strips and then on the working size: a 9 MP 16-bit frame as float64 would be 72 MB.
    assert numpy_peak < 40 * 2**20


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_a_16_bit_picture_costs_under_150_mb_of_real_memory() -> None:
    # The kernel's own figure: peak resident memory during the call above the memory before it. The
    # peak is reset just before the call (/proc/self/clear_refs), so it is this call's peak, not the
    # process's highest ever. Before strips, this 9 MP 16-bit file cost ~220 MB.
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak")
    data = big_16_bit_png()
    prepare_digit(encode(draw_digit(), "PNG"))  # imports and first-call costs paid before measuring
    before = _proc_kb("VmRSS")
    try:
        clear_refs.write_text("5")
    except OSError:
        pytest.skip("this process may not reset its peak RSS")
    prepare_digit(data)
    assert (_proc_kb("VmHWM") - before) / 1024 < 150


def progressive_jpeg_claiming(width: int, height: int) -> bytes:
    """A small progressive JPEG whose frame header (SOF2) claims width x height."""
    data = bytearray(encode(draw_digit(size=(64, 64), mode="RGB"), "JPEG", progressive=True))
    at = data.index(b"\xff\xc2")  # SOF2: marker, length (2), precision (1), height (2), width (2)
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda: png_header_only(7300, 5470, color_type=6),  # 40 MP RGBA: 160 MB as a frame
        lambda: png_header_only(6000, 6000, color_type=2),  # 36 MP RGB: 144 MB
        lambda: progressive_jpeg_claiming(6000, 6000),  # every DCT coefficient kept: 108 MB
        lambda: encode(draw_digit((2300, 2300), mode="RGBA"), "WEBP", lossless=True),  # 5.3 MP, ~90 MB in libwebp + Pillow
    ],
    ids=["png_rgba_40MP", "png_rgb_36MP", "progressive_jpeg_36MP", "webp_5MP"],
)
def test_pictures_too_costly_to_decode_are_refused_from_the_header(make, pixel_loads: list[str]) -> None:
    message = raises_unusable(make())
    assert "megapixels" in message and "Scale it down" in message
    assert pixel_loads == []  # refused before a pixel was decoded


def test_large_decodes_take_turns_and_small_ones_never_wait(monkeypatch) -> None:
    import explorer.preprocess as pre

    large = encode(draw_digit((2000, 2000), width=170), "PNG")  # 4 MB as a frame
    small = encode(draw_digit(), "PNG")  # 40 KB
    monkeypatch.setattr(pre, "LARGE_DECODE_BYTES", 1_000_000)  # so the 4 MB frame counts as large
    monkeypatch.setattr(pre, "_large_decodes", threading.BoundedSemaphore(2))
    inside, most, release = [0], [0], threading.Event()
    changed = threading.Condition()
    reduced_gray = pre._reduced_gray

    def held(img: Image.Image) -> Image.Image:  # a large decode holds its turn until released
        if img.width * img.height > 1_000_000:
            with changed:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                changed.notify_all()
            release.wait(30)
            with changed:
                inside[0] -= 1
        return reduced_gray(img)

    monkeypatch.setattr(pre, "_reduced_gray", held)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            prepare_digit(large)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        with changed:
            assert changed.wait_for(lambda: inside[0] == 2, timeout=30)
        assert_mnist_like(prepare_digit(small))  # a learner's drawing is answered meanwhile
        monkeypatch.setattr(pre, "LARGE_DECODE_WAIT_S", 0.05)
        assert "busy" in raises_unusable(large)  # no turn in time: refused in words, not queued forever
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert errors == [] and most[0] == 2  # all five decoded, never more than two at once


def test_unexpected_internal_errors_become_unusable_image_errors(monkeypatch) -> None:
    import explorer.preprocess as pre

    def boom(*_args, **_kwargs):
        raise RuntimeError("internal bug")

    monkeypatch.setattr(pre, "_extract_ink", boom)
    raises_unusable(encode(draw_digit(), "PNG"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_fuzzed_files_give_a_digit_or_unusable_image_error(fmt: str) -> None:
    rng = np.random.default_rng(1234 + len(fmt))
    valid = encode(draw_digit(size=(64, 64), width=7), fmt)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(200):
        data = bytearray(valid)
        kind = rng.integers(0, 4)
        if kind in (0, 3):  # flip a few bytes (header or body)
            for pos in rng.integers(0, len(data), size=rng.integers(1, 8)):
                data[pos] ^= int(rng.integers(1, 256))
        if kind in (1, 3):  # truncate
            del data[int(rng.integers(0, len(data))) :]
        if kind == 2:  # splice random bytes in
            pos = int(rng.integers(0, len(data)))
            data[pos:pos] = rng.bytes(int(rng.integers(1, 64)))
        try:
            out = prepare_digit(bytes(data))
        except UnusableImageError as err:
            assert str(err)
            outcomes["refused"] += 1
            continue
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
        outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0  # the mutations exercised both paths


# ----------------------------------------------------------------------------------------------
# Committed sample assets
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["digit_clean.png", "digit_photo.jpg", "digit_transparent.png"])
def test_committed_sample_assets_are_accepted(name: str, clean7: np.ndarray) -> None:
    path = ASSETS / name
    assert path.stat().st_size < 50_000
    out = prepare_digit(path.read_bytes())
    assert_mnist_like(out)
    assert corr(out, clean7) > 0.8


def write_assets() -> None:
    """Regenerate tests/assets/ (used by these tests and by the app/browser tests)."""
    ASSETS.mkdir(exist_ok=True)
    draw_digit(size=(280, 280), width=24).save(ASSETS / "digit_clean.png", optimize=True)
    (ASSETS / "digit_photo.jpg").write_bytes(make_photo(seed=7, size=360, quality=80))
    alpha = ImageOps.invert(draw_digit(size=(280, 280), width=24))
    rgba = Image.new("RGBA", alpha.size, (20, 20, 60, 0))
    rgba.putalpha(alpha)
    rgba.save(ASSETS / "digit_transparent.png", optimize=True)


if __name__ == "__main__":
    write_assets()
    print("wrote", sorted(p.name for p in ASSETS.iterdir()))
