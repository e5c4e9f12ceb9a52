"""The pure helpers behind the "make" panels: interpolation paths, traversal grids and tiling, and
the exported files (PNG, GIF, the code file's JSON contract, download names). NumPy and Pillow only."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from explorer.exports import (CODE_FORMAT, CODE_VERSION, CodeFile, CodeFileError, code_json, export_name, gif_bytes,
                              png_bytes, read_code_json)
from explorer.grids import tile, traversal_codes, traversal_offsets
from explorer.interpolate import MAX_STEPS, METHODS, MIN_STEPS, interpolate, path_norms

SEEDS = (0, 1, 2, 3, 4)


def equal_norm_pair(seed: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two random Gaussian codes [dim], both scaled to norm sqrt(dim) (the prior's shell)."""
    a, b = np.random.default_rng(seed).standard_normal((2, dim))
    r = np.sqrt(dim)
    return (a * r / np.linalg.norm(a)).astype(np.float32), (b * r / np.linalg.norm(b)).astype(np.float32)


# -- interpolation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [MIN_STEPS, 7, MAX_STEPS])
def test_interpolation_starts_at_a_ends_at_b_with_steps_codes(method: str, steps: int) -> None:
    a, b = np.random.default_rng(steps).standard_normal((2, 8)).astype(np.float32) * 1.7
    path = interpolate(a, b, steps, method)
    assert path.codes.shape == (steps, 8) and path.codes.dtype == np.float32
    assert path.t.shape == (steps,) and path.t.dtype == np.float64
    assert path.method == method
    np.testing.assert_array_equal(path.codes[0], a)
    np.testing.assert_array_equal(path.codes[-1], b)
    np.testing.assert_allclose(path.t, np.linspace(0.0, 1.0, steps))
    assert np.isfinite(path.codes).all()


def test_linear_overshoot_runs_past_both_ends_along_the_line() -> None:
    a, b = equal_norm_pair(0)
    path = interpolate(a, b, 7, "linear", overshoot=0.25)
    np.testing.assert_allclose(path.t, np.linspace(-0.25, 1.25, 7))
    assert path.t[0] < 0 and path.t[-1] > 1
    expected = a[None, :] + path.t[:, None] * (b - a)[None, :]
    np.testing.assert_allclose(path.codes, expected, rtol=1e-5, atol=1e-5)
    ab = (b - a).astype(np.float64)
    # The first code lies before a and the last one after b, a quarter of |b - a| out.
    assert np.dot(path.codes[0] - a, ab) < 0 < np.dot(path.codes[-1] - b, ab)
    np.testing.assert_allclose(np.linalg.norm(path.codes[0] - a), 0.25 * np.linalg.norm(ab), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path.codes[-1] - b), 0.25 * np.linalg.norm(ab), rtol=1e-5)


def test_slerp_overshoot_runs_past_both_ends_on_the_circle() -> None:
    a, b = equal_norm_pair(1)
    path = interpolate(a, b, 9, "slerp", overshoot=0.5)
    assert path.method == "slerp" and path.t[0] == -0.5 and path.t[-1] == 1.5

    def angle(u: np.ndarray, v: np.ndarray) -> float:
        u, v = u.astype(np.float64), v.astype(np.float64)
        return float(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))

    omega = angle(a, b)
    np.testing.assert_allclose(angle(path.codes[0], b), 1.5 * omega, rtol=1e-4)
    np.testing.assert_allclose(angle(path.codes[-1], a), 1.5 * omega, rtol=1e-4)
    np.testing.assert_allclose(path_norms(path), np.linalg.norm(a), rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_slerp_keeps_the_norm_and_linear_dips(seed: int) -> None:
    a, b = equal_norm_pair(seed)
    lo, hi = sorted([float(np.linalg.norm(a)), float(np.linalg.norm(b))])
    slerp = path_norms(interpolate(a, b, 11, "slerp"))
    linear = path_norms(interpolate(a, b, 11, "linear"))
    assert slerp.dtype == np.float64 and slerp.shape == (11,)
    assert (slerp >= lo * (1 - 1e-5)).all() and (slerp <= hi * (1 + 1e-5)).all()
    assert linear.min() < lo * 0.99  # the straight line cuts inside the shell
    assert linear[5] == linear.min()  # deepest halfway, for endpoints of equal norm


@pytest.mark.parametrize("case", ["a zero", "b zero", "a equals b", "parallel", "antipodal"])
def test_slerp_falls_back_to_linear(case: str) -> None:
    a, _ = equal_norm_pair(2)
    a, b = {"a zero": (np.zeros(8, np.float32), a), "b zero": (a, np.zeros(8, np.float32)), "a equals b": (a, a.copy()),
            "parallel": (a, 3 * a), "antipodal": (a, -a)}[case]
    slerp, linear = interpolate(a, b, 6, "slerp", overshoot=0.2), interpolate(a, b, 6, "linear", overshoot=0.2)
    assert np.isfinite(slerp.codes).all()
    assert slerp.method == "linear"
    np.testing.assert_allclose(slerp.codes, linear.codes, rtol=0, atol=1e-6)
    exact = interpolate(a, b, 6, "slerp")
    np.testing.assert_array_equal(exact.codes[0], a)
    np.testing.assert_array_equal(exact.codes[-1], b)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"steps": 1}, "steps"), ({"steps": 25}, "steps"), ({"steps": 2.5}, "steps"),
    ({"overshoot": 0.6}, "overshoot"), ({"overshoot": -0.1}, "overshoot"), ({"overshoot": float("nan")}, "overshoot"),
    ({"method": "cubic"}, "cubic"),
    ({"a": np.array([0.0, np.nan, 1.0])}, "finite"), ({"b": np.array([0.0, np.inf, 1.0])}, "finite"),
    ({"b": np.zeros(4)}, "shape"), ({"a": np.zeros((2, 3))}, "shape"),
])
def test_interpolation_refuses_bad_input(kwargs: dict, words: str) -> None:
    args = {"a": np.zeros(3), "b": np.ones(3), "steps": 5, "method": "slerp", "overshoot": 0.0} | kwargs
    with pytest.raises(ValueError, match=words):
        interpolate(**args)


# -- traversal grids and tiling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_scale", [False, True])
def test_traversal_rows_move_one_dimension_each(with_scale: bool) -> None:
    rng = np.random.default_rng(5)
    center = rng.standard_normal(8).astype(np.float32)
    scale = rng.uniform(0.1, 2.0, 8) if with_scale else None
    order = [3, 0, 7, 5]
    offsets = traversal_offsets(2.0, 5)
    codes = traversal_codes(center, order, offsets, scale)
    assert codes.shape == (4, 5, 8) and codes.dtype == np.float32
    steps = np.ones(8) if scale is None else scale
    for r, d in enumerate(order):
        delta = codes[r].astype(np.float64) - center.astype(np.float64)
        others = np.delete(np.arange(8), d)
        assert (delta[:, others] == 0).all()
        np.testing.assert_allclose(delta[:, d], offsets * steps[d], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(codes[:, 2], np.broadcast_to(center, (4, 8)))  # offsets[2] == 0


def test_traversal_offsets_and_their_limits() -> None:
    np.testing.assert_allclose(traversal_offsets(3.0, 7), [-3, -2, -1, 0, 1, 2, 3])
    assert traversal_offsets(1.5, 2).tolist() == [-1.5, 1.5] and len(traversal_offsets(1, 15)) == 15
    for span, steps in [(0.0, 5), (-1.0, 5), (float("nan"), 5), (float("inf"), 5), (1.0, 1), (1.0, 16)]:
        with pytest.raises(ValueError):
            traversal_offsets(span, steps)
    with pytest.raises(ValueError, match="order"):
        traversal_codes(np.zeros(4), [4], [0.0, 1.0])
    with pytest.raises(ValueError, match="scale"):
        traversal_codes(np.zeros(4), [1], [0.0, 1.0], np.ones(3))


def check_tile(out: np.ndarray, grid: np.ndarray, scale: int, gutter: int, row_gaps: tuple[int, ...],
               gutter_value: int) -> None:
    """Every digit is where it belongs as crisp scale x scale blocks; every other pixel is gutter."""
    rows, cols, h, w = grid.shape
    expected_h = rows * h * scale + (rows - 1) * gutter + len(row_gaps) * 3 * gutter
    assert out.shape == (expected_h, cols * w * scale + (cols - 1) * gutter) and out.dtype == np.uint8
    digit = np.zeros(out.shape, bool)
    y = 0
    for r in range(rows):
        y += 3 * gutter if r in row_gaps else 0
        for c in range(cols):
            x = c * (w * scale + gutter)
            block = out[y: y + h * scale, x: x + w * scale]
            blocks = block.reshape(h, scale, w, scale)
            assert (blocks == blocks[:, :1, :, :1]).all()  # crisp: each source pixel is one flat block
            np.testing.assert_array_equal(blocks[:, 0, :, 0], np.rint(np.clip(grid[r, c], 0, 1) * 255))
            digit[y: y + h * scale, x: x + w * scale] = True
        y += h * scale + gutter
    assert (out[~digit] == gutter_value).all()
    assert (~digit).sum() == out.size - rows * cols * h * w * scale * scale


@pytest.mark.parametrize(("scale", "gutter", "row_gaps"), [(4, 2, ()), (4, 2, (2,)), (3, 1, (1, 3)), (1, 0, ())])
def test_tile_places_crisp_digits_between_gutters(scale: int, gutter: int, row_gaps: tuple[int, ...]) -> None:
    grid = np.random.default_rng(6).uniform(-0.2, 1.2, (4, 3, 5, 6))  # out-of-range values get clipped
    out = tile(grid, scale=scale, gutter=gutter, row_gaps=row_gaps, gutter_value=77)
    check_tile(out, grid, scale, gutter, row_gaps, 77)


def test_tile_sizes_of_a_grid_and_a_strip() -> None:
    grid = np.full((3, 4, 28, 28), 0.5)
    assert tile(grid).shape == (3 * 112 + 2 * 2, 4 * 112 + 3 * 2)
    assert tile(grid, row_gaps=[2]).shape == (3 * 112 + 2 * 2 + 6, 4 * 112 + 3 * 2)
    assert tile(grid, scale=2, gutter=5, row_gaps=[1, 2]).shape == (3 * 56 + 2 * 5 + 2 * 15, 4 * 56 + 3 * 5)
    strip = np.random.default_rng(7).random((5, 28, 28))
    out = tile(strip, scale=3, gutter=2)
    assert out.shape == (84, 5 * 84 + 4 * 2)
    check_tile(out, strip[None], 3, 2, (), 255)  # the default gutter is white
    np.testing.assert_array_equal(out, tile(strip[None], scale=3, gutter=2))


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"scale": 17}, {"gutter": -1}, {"gutter": 17}, {"row_gaps": (0,)},
                                    {"row_gaps": (3,)}, {"row_gaps": (1, 1)}, {"gutter_value": 256}])
def test_tile_refuses_bad_layouts(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        tile(np.zeros((3, 2, 4, 4)), **kwargs)
    with pytest.raises(ValueError):
        tile(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        tile(np.full((2, 4, 4), np.nan))


# -- PNG and GIF -------------------------------------------------------------------------------------------------


def test_png_bytes_decode_to_the_same_picture() -> None:
    image = np.random.default_rng(8).integers(0, 256, (13, 29), dtype=np.uint8)
    data = png_bytes(image)
    assert data.startswith(b"\x89PNG") and data == png_bytes(image.copy())  # deterministic
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (29, 13)
        np.testing.assert_array_equal(np.asarray(im), image)
    with pytest.raises(ValueError):
        png_bytes(image.astype(np.float32))


def read_gif(data: bytes) -> tuple[list[np.ndarray], list[int], object]:
    """(frames as grey arrays, each frame's duration, the loop count) of a GIF."""
    frames, durations = [], []
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF"
        loop = im.info.get("loop")
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("L")))
            durations.append(im.info["duration"])
    return frames, durations, loop


def random_frames(n: int, seed: int = 9) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 9, 11), dtype=np.uint8)


def test_gif_loops_forever_with_every_frame() -> None:
    frames = random_frames(5)
    got, durations, loop = read_gif(gif_bytes(frames, 40))
    assert len(got) == 5 and loop == 0 and durations == [40] * 5
    np.testing.assert_array_equal(np.stack(got), frames)


def test_gif_pingpong_plays_back_without_repeating_the_ends() -> None:
    frames = random_frames(5, seed=10)
    got, durations, loop = read_gif(gif_bytes(frames, 120, pingpong=True))
    assert len(got) == 2 * 5 - 2 and loop == 0 and durations == [120] * 8
    np.testing.assert_array_equal(np.stack(got), frames[[0, 1, 2, 3, 4, 3, 2, 1]])
    np.testing.assert_array_equal(got[5], frames[3])  # frame F is frame F-2
    got2, _, _ = read_gif(gif_bytes(frames[:2], 50, pingpong=True))
    assert len(got2) == 2


def test_gif_merges_identical_frames_as_documented() -> None:
    a, b = random_frames(2, seed=11)
    got, durations, _ = read_gif(gif_bytes(np.stack([a, a, b]), 30))
    assert len(got) == 2 and durations == [60, 30]
    np.testing.assert_array_equal(np.stack(got), np.stack([a, b]))


@pytest.mark.parametrize("frame_ms", [19, 5001, 40.5])
def test_gif_refuses_bad_frame_times(frame_ms: object) -> None:
    with pytest.raises(ValueError, match="frame time"):
        gif_bytes(random_frames(3), frame_ms)  # type: ignore[arg-type]


# -- the code file -----------------------------------------------------------------------------------------------

SHA = "0123456789abcdef" * 4


def good_doc(**changes: object) -> dict:
    doc = {"format": CODE_FORMAT, "version": CODE_VERSION, "model": "default", "checkpoint_sha256": SHA,
           "latent_dim": 3, "z": [0.5, -1.25, 3.0], "source": "sliders", "projection": "PCA", "digit": 17}
    return {k: v for k, v in (doc | changes).items() if v is not DROP}


DROP = object()  # good_doc(field=DROP) leaves the field out


def test_code_file_round_trip() -> None:
    cf = CodeFile(model="default", sha256=SHA, z=(0.1234, -1.5, 0.0, 2.0), source="clicked test digit #17",
                  projection="t-SNE", digit=17)
    text = code_json(cf)
    assert text.endswith("}\n") and text.startswith('{\n  "format": "vae-explorer-code"')
    doc = json.loads(text)
    assert doc == {"format": CODE_FORMAT, "version": 1, "model": "default", "checkpoint_sha256": SHA,
                   "latent_dim": 4, "z": [0.1234, -1.5, 0.0, 2.0], "source": "clicked test digit #17",
                   "projection": "t-SNE", "digit": 17}
    assert read_code_json(text) == cf
    assert read_code_json(text.encode("utf-8")) == cf
    assert read_code_json(b"\xef\xbb\xbf" + text.encode("utf-8")) == cf  # a byte-order mark is fine


def test_code_file_rounds_and_omits_and_defaults() -> None:
    cf = CodeFile(model="default", sha256=SHA.upper(), z=(0.123456, -0.00001), source="x" * 100,
                  digit=np.int64(3))  # type: ignore[arg-type]
    doc = json.loads(code_json(cf))
    assert doc["z"] == [0.1235, 0.0] and doc["checkpoint_sha256"] == SHA and doc["digit"] == 3
    assert "projection" not in doc
    back = read_code_json(code_json(cf))
    assert back.z == (0.1235, 0.0) and back.sha256 == SHA and back.projection is None and back.digit == 3
    assert back.source == "x" * 80
    minimal = read_code_json(json.dumps(good_doc(latent_dim=DROP, source=DROP, projection=DROP, digit=DROP)))
    assert minimal == CodeFile("default", SHA, (0.5, -1.25, 3.0), "the code file")
    assert read_code_json(json.dumps(good_doc(checkpoint_sha256=SHA.upper()))).sha256 == SHA
    with pytest.raises(CodeFileError, match="z"):
        code_json(CodeFile("default", SHA, (float("nan"),), "sliders"))
    with pytest.raises(CodeFileError, match="checkpoint_sha256"):
        code_json(CodeFile("default", "abc", (1.0,), "sliders"))


BAD_FILES = [
    ("not utf-8", b'{"z": "\xff\xfe"}', "UTF-8"),
    ("not json", '{"format": "vae-explorer-code", ', "JSON"),
    ("deeply nested", "[" * 60_000, "JSON"),
    ("too large", " " * 100_001, "100,000"),
    ("too large bytes", b" " * 100_001, "100,000"),
    ("not an object", "[1, 2, 3]", "object"),
    ("not text", None, "text"),
    ("wrong format", json.dumps(good_doc(format="something-else")), "format"),
    ("no format", json.dumps(good_doc(format=DROP)), "format"),
    ("newer version", json.dumps(good_doc(version=2)), "version is 2"),
    ("version as text", json.dumps(good_doc(version="1")), "version"),
    ("no model", json.dumps(good_doc(model=DROP)), "model"),
    ("empty model", json.dumps(good_doc(model="  ")), "model"),
    ("model too long", json.dumps(good_doc(model="m" * 201)), "model"),
    ("model not text", json.dumps(good_doc(model=3)), "model"),
    ("no sha", json.dumps(good_doc(checkpoint_sha256=DROP)), "checkpoint_sha256"),
    ("short sha", json.dumps(good_doc(checkpoint_sha256="abc123")), "checkpoint_sha256"),
    ("sha not hex", json.dumps(good_doc(checkpoint_sha256="g" * 64)), "checkpoint_sha256"),
    ("no z", json.dumps(good_doc(z=DROP, latent_dim=DROP)), "z"),
    ("empty z", json.dumps(good_doc(z=[], latent_dim=DROP)), "z"),
    ("z too long", json.dumps(good_doc(z=[0.0] * 65, latent_dim=DROP)), "z"),
    ("z not a list", json.dumps(good_doc(z={"0": 1.0}, latent_dim=DROP)), "z"),
    ("z holds a bool", json.dumps(good_doc(z=[0.5, True, 3.0])), "z holds True"),
    ("z holds a string", json.dumps(good_doc(z=[0.5, "1.0", 3.0])), "z holds '1.0'"),
    ("z holds null", json.dumps(good_doc(z=[0.5, None, 3.0])), "z holds None"),
    ("z holds a list", json.dumps(good_doc(z=[0.5, [1.0], 3.0])), "z holds"),
    ("z holds NaN", '{"format": "vae-explorer-code", "version": 1, "model": "default", "checkpoint_sha256": "'
     + SHA + '", "z": [NaN]}', "z holds a number that is not finite"),
    ("z holds Infinity", json.dumps(good_doc(z=[0.5, float("-inf"), 3.0])), "not finite"),
    ("z overflows a float", json.dumps(good_doc(latent_dim=DROP)).replace("3.0]", "1e400]"), "not finite"),
    ("z holds a huge int", json.dumps(good_doc(z=[0.5, 10**300, 3.0])), "z holds a number"),
    # Python's json refuses integers of over 4,300 digits (a ValueError of its own): still a CodeFileError.
    ("z holds a giant int", '{"format": "vae-explorer-code", "version": 1, "z": [' + "9" * 5000 + "]}", "JSON"),
    ("latent_dim disagrees", json.dumps(good_doc(z=[0.0] * 7, latent_dim=8)),
     "The code file's z has 7 numbers but says latent_dim 8."),
    ("latent_dim as text", json.dumps(good_doc(latent_dim="3")), "latent_dim"),
    ("latent_dim as bool", json.dumps(good_doc(z=[1.0], latent_dim=True)), "latent_dim"),
    ("unknown projection", json.dumps(good_doc(projection="UMAP")), "projection is 'UMAP'"),
    ("negative digit", json.dumps(good_doc(digit=-1)), "digit is -1"),
    ("fractional digit", json.dumps(good_doc(digit=1.5)), "digit"),
    ("digit as bool", json.dumps(good_doc(digit=True)), "digit"),
    ("source not text", json.dumps(good_doc(source=5)), "source"),
]


@pytest.mark.parametrize(("text", "words"), [(t, w) for _, t, w in BAD_FILES], ids=[n for n, _, _ in BAD_FILES])
def test_bad_code_files_say_what_is_wrong(text: object, words: str) -> None:
    with pytest.raises(CodeFileError) as info:
        read_code_json(text)  # type: ignore[arg-type]
    assert words in str(info.value)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_mangled_code_files_only_ever_raise_code_file_errors() -> None:
    good = code_json(CodeFile("default", SHA, (0.5, -1.25, 3.0, 0.0), "sliders", "PCA", 4)).encode()
    rng = random.Random(12)
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[i] = rng.randrange(256)
            elif op == 1:
                del data[i]
            else:
                data.insert(i, rng.choice(b'{}[]",:-.0123456789eE \\ntruefalsn\xff'))
        try:
            cf = read_code_json(bytes(data))
        except CodeFileError:
            continue
        assert isinstance(cf, CodeFile) and 1 <= len(cf.z) <= 64 and len(cf.sha256) == 64


@pytest.mark.parametrize(("args", "name"), [
    (("default", "interpolation test 17 to mean of 7 slerp 10", "gif"),
     "default-interpolation-test-17-to-mean-of-7-slerp-10.gif"),
    (("Default", "Traversal: #3 / \u03c3", ".PNG"), "default-traversal-3.png"),
    (("beta_4.0", "traversal  --  sigma units", "png"), "beta_4.0-traversal-sigma-units.png"),
    (("default", "../../etc/passwd", "json"), "default-..-..-etc-passwd.json"),
    (("..", "...", "json"), "export.json"),
])
def test_export_names(args: tuple[str, str, str], name: str) -> None:
    assert export_name(*args) == name


def test_export_names_are_short_and_safe() -> None:
    name = export_name("default", "x" * 50 + " - " + "y" * 200, "gif")
    stem, ext = name.rsplit(".", 1)
    assert ext == "gif" and len(stem) <= 120 and not stem.endswith("-")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    with pytest.raises(ValueError):
        export_name("default", "grid", "")
