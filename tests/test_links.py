"""Unit tests for explorer/links.py: shareable-link query values to and from a view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer import links
from explorer.links import CODE, DIGIT, MAP, MODEL, LinkView

DIM, N = 8, 300


def _code(text: str, dim: int = DIM) -> LinkView:
    return links.read_view({CODE: text}, dim, N)


# --- encode ----------------------------------------------------------------------------------

def test_encode_values():
    p = links.encode("default.pt", [0.25, -1.3, 0.0, 4.0, -4.0, 0.05, 1.0, 2.5], "t-SNE", 123)
    assert p == {MODEL: "default.pt", CODE: "0.25,-1.3,0,4,-4,0.05,1,2.5", MAP: "tsne", DIGIT: "123"}
    assert links.encode("m.pt", np.zeros(2, np.float32), "PCA", None) == {MODEL: "m.pt", CODE: "0,0", MAP: "pca"}
    assert DIGIT not in links.encode("m.pt", [1.0], "PCA", None)
    assert links.encode("m.pt", [1.0], "PCA", np.int64(4))[DIGIT] == "4"


def test_encode_negative_zero_and_tiny_values_give_zero():
    assert links.encode("m", [-0.0], "PCA", None)[CODE] == "0"
    assert links.encode("m", [-0.004, 0.004, -0.0], "PCA", None)[CODE] == "0,0,0"
    assert links.encode("m", [10.0, -20.0, 100.0, 0.1], "PCA", None)[CODE] == "10,-20,100,0.1"
    assert links.encode("m", [1.005000001, -0.999], "PCA", None)[CODE] == "1.01,-1"


def test_encode_uses_only_url_safe_characters():
    p = links.encode("default.pt", np.linspace(-4, 4, 8), "PCA", 0)
    assert all(set(v) <= set("0123456789.,-abcdefghijklmnopqrstuvwxyz") for k, v in p.items() if k != MODEL)


# --- round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize("projection", ["PCA", "t-SNE"])
@pytest.mark.parametrize("digit", [None, 0, 17, N - 1])
def test_encode_read_view_round_trip(projection, digit):
    z = np.random.default_rng(digit or 0).uniform(-4, 4, DIM)
    params = links.encode("default.pt", z, projection, digit)
    view = links.read_view(params, DIM, N)
    assert view.notices == ()
    assert view.code is not None and len(view.code) == DIM
    assert view.code == pytest.approx(np.round(z, 2), abs=1e-9)
    assert all(type(v) is float for v in view.code)
    assert view.projection == projection
    assert view.digit == digit
    assert links.read_model(params, ["other.pt", "default.pt"]) == ("default.pt", ())


def test_round_trip_of_slider_grid_codes_is_exact():
    z = np.round(np.random.default_rng(5).uniform(-4, 4, DIM) / 0.05) * 0.05
    view = links.read_view(links.encode("m", z, "PCA", None), DIM, N)
    assert view.code == tuple(float(f"{v:.2f}") for v in z)


# --- read_model -------------------------------------------------------------------------------

def test_read_model():
    names = ["default.pt", "wide.pt"]
    assert links.read_model({}, names) == (None, ())
    assert links.read_model({MODEL: "wide.pt"}, names) == ("wide.pt", ())
    name, notices = links.read_model({MODEL: "gone.pt"}, names)
    assert name is None and len(notices) == 1 and "gone.pt" in notices[0] and "default.pt" in notices[0]
    name, notices = links.read_model({MODEL: "x" * 500}, names)
    assert name is None and len(notices) == 1 and len(notices[0]) < 200  # the name is shortened
    name, notices = links.read_model({MODEL: "a.pt"}, [])
    assert name is None and len(notices) == 1


# --- read_view notices ------------------------------------------------------------------------

def test_read_view_of_an_empty_link_asks_for_nothing():
    assert links.read_view({}, DIM, N) == LinkView(None, None, None, ())
    assert links.read_view({MODEL: "default.pt"}, DIM, N) == LinkView()


def test_code_of_the_wrong_length():
    for text in ("1,2,3", "0,0,0,0,0,0,0,0,0", ""):
        v = _code(text)
        assert v.code is None and len(v.notices) == 1 and "8" in v.notices[0], text


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e400"])
def test_code_with_nan_or_infinite_values(bad):
    v = _code(",".join(["0"] * 7 + [bad]))
    assert v.code is None and len(v.notices) == 1 and "NaN" in v.notices[0]


@pytest.mark.parametrize("bad", ["abc", "0x10", "1..2", "--1", "", "1 2", "None"])
def test_code_that_is_not_numbers(bad):
    v = _code(",".join(["0"] * 7 + [bad]))
    assert v.code is None and len(v.notices) == 1 and "not a list of numbers" in v.notices[0]


def test_code_out_of_range_is_clipped_and_kept():
    v = _code("5,-9.5,4,-4,1e3,0,0.5,-4.01")
    assert v.code == (4.0, -4.0, 4.0, -4.0, 4.0, 0.0, 0.5, -4.0)
    assert len(v.notices) == 1 and "clipped" in v.notices[0]


def test_code_with_spaces_is_read():
    v = _code(" 1 , -0.5,0,0,0,0,0, 2 ")
    assert v.code == (1.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0) and v.notices == ()


def test_too_long_code_is_refused_before_parsing():
    long = ",".join(["0"] * 7 + ["0" * (links.MAX_VALUE_CHARS)])
    assert len(long) > links.MAX_VALUE_CHARS
    v = _code(long)
    assert v.code is None and len(v.notices) == 1 and "too long" in v.notices[0]
    # at the limit it is still read
    ok = ",".join(["0"] * 7 + ["0" * (links.MAX_VALUE_CHARS - 14)])
    assert len(ok) == links.MAX_VALUE_CHARS
    assert _code(ok).code == (0.0,) * 8 and _code(ok).notices == ()


@pytest.mark.parametrize("raw, want", [("pca", "PCA"), ("tsne", "t-SNE"), (" TSNE ", "t-SNE"), ("PCA", "PCA")])
def test_map_values(raw, want):
    v = links.read_view({MAP: raw}, DIM, N)
    assert v.projection == want and v.notices == ()


@pytest.mark.parametrize("raw", ["umap", "", "t-SNE", "p c a", "x" * 1000])
def test_bad_map_keeps_the_current_one(raw):
    v = links.read_view({MAP: raw}, DIM, N)
    assert v.projection is None and len(v.notices) == 1 and "map" in v.notices[0]
    assert len(v.notices[0]) < 200


@pytest.mark.parametrize("raw, want", [("0", 0), ("299", 299), (" 12 ", 12)])
def test_digit_values(raw, want):
    v = links.read_view({DIGIT: raw}, DIM, N)
    assert v.digit == want and v.notices == ()


@pytest.mark.parametrize("raw", ["300", "-1", "1e3", "abc", "", "3.0", "12345678901234567890", "x" * 1000])
def test_bad_digit_selects_none(raw):
    v = links.read_view({DIGIT: raw}, DIM, N)
    assert v.digit is None and len(v.notices) == 1 and "digit" in v.notices[0]
    assert "299" in v.notices[0] and len(v.notices[0]) < 200


def test_bad_parts_are_dropped_and_the_rest_still_applies():
    params = {MODEL: "default.pt", CODE: "1,2,3", MAP: "tsne", DIGIT: "nope"}
    v = links.read_view(params, DIM, N)
    assert v.code is None and v.projection == "t-SNE" and v.digit is None and len(v.notices) == 2
    params = {CODE: "0,0,0,0,0,0,0,9", MAP: "umap", DIGIT: "5"}
    v = links.read_view(params, DIM, N)
    assert v.code == (0.0,) * 7 + (4.0,) and v.projection is None and v.digit == 5 and len(v.notices) == 2


JUNK = ["", ",,,", "1e999", "0x10", "ünïcödé", "١٢٣", "💥", "\x00", "\n", "%20", "-", ".", "e", "1,2,3,4,5,6,7,8,9",
        ",".join(["💥"] * 8), ",".join(["1e999"] * 8), ",".join([""] * 8), "[1,2]", "{}", "None", "true", " " * 500]


@pytest.mark.parametrize("junk", JUNK, ids=[f"junk{i}" for i in range(len(JUNK))])
def test_read_view_never_raises_on_junk(junk):
    for dim in (1, DIM):
        v = links.read_view({MODEL: junk, CODE: junk, MAP: junk, DIGIT: junk}, dim, N)
        assert isinstance(v, LinkView)
        assert v.code is None or (len(v.code) == dim and all(math.isfinite(x) and abs(x) <= 4.0 for x in v.code))
        assert v.digit is None or 0 <= v.digit < N
        assert v.projection in (None, "PCA", "t-SNE")
        assert all(isinstance(n, str) for n in v.notices)
    name, notices = links.read_model({MODEL: junk}, ["default.pt"])
    assert name is None and len(notices) == 1
