"""Unit tests for explorer/studio.py (the live studio's payload, view and plausibility) and the
code-state callbacks of explorer/state.py that the studio writes through."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict

import numpy as np
import pytest

from explorer import bundle, codes, state, studio
from explorer.numpy_vae import ACTIVATIONS


@pytest.fixture(scope="module")
def em(tiny_models_dir) -> bundle.ExplorerModel:
    return bundle.load_explorer_model(tiny_models_dir / "default.pt")


@pytest.fixture(scope="module")
def spacing(em) -> studio.NeighbourSpacing:
    return studio.neighbour_spacing(em.atlas.mu)


@pytest.fixture(scope="module")
def payload(em, spacing) -> bytes:
    return studio.model_payload(em, spacing)


# --- payload ----------------------------------------------------------------------------------

def _atlas_decoder(em) -> list[tuple[np.ndarray, np.ndarray]]:
    w, hidden = em.atlas.weights, em.atlas.model_config["decoder_hidden"]
    layers = [(w[f"decoder_body.{2 * i}.weight"], w[f"decoder_body.{2 * i}.bias"]) for i in range(len(hidden))]
    return layers + [(w["decoder_out.weight"], w["decoder_out.bias"])]


def test_payload_round_trip_header(em, spacing, payload):
    header, arrays = studio.read_payload(payload)
    assert payload[:4] == b"VAES"
    assert header["id"] == studio.model_id(em) == em.sha256[:16]
    assert header["latent_dim"] == em.latent_dim == 8
    assert header["activation"] == em.atlas.model_config.get("activation", "relu")
    assert header["spacing"] == asdict(spacing)
    assert header["kind"] == "model"
    # the verdict's cut-offs travel as Python computed them: the browser only compares
    assert header["thresholds"] == {"typical_max": spacing.p95, "sparse_max": 3.0 * spacing.p99}
    assert header["tsne_neighbours"] == studio.TSNE_NEIGHBOURS
    expected = _atlas_decoder(em)
    assert len(header["layers"]) == len(expected) == 2
    for layer, (w, b) in zip(header["layers"], expected):
        assert (layer["in"], layer["out"]) == (w.shape[1], w.shape[0])
        assert arrays[layer["weight"]].dtype == np.float32 and arrays[layer["bias"]].dtype == np.float32
        np.testing.assert_array_equal(arrays[layer["weight"]], w.astype(np.float32))
        np.testing.assert_array_equal(arrays[layer["bias"]], b.astype(np.float32))
    # consecutive layers chain: D -> hidden... -> 784
    sizes = [header["layers"][0]["in"]] + [layer["out"] for layer in header["layers"]]
    assert sizes[0] == 8 and sizes[-1] == 784
    assert all(a["out"] == b["in"] for a, b in zip(header["layers"], header["layers"][1:]))


def test_payload_round_trip_atlas_arrays(em, payload):
    _, arrays = studio.read_payload(payload)
    a = em.atlas
    for name in ("mu", "pca", "tsne", "pca_mean", "pca_components"):
        assert arrays[name].dtype == np.float32, name
        np.testing.assert_array_equal(arrays[name], getattr(a, name).astype(np.float32), err_msg=name)
    assert arrays["labels"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["labels"], a.labels)
    assert arrays["mu"].shape == (300, 8) and arrays["tsne"].shape == (300, 2) and arrays["labels"].shape == (300,)
    # the MNIST test index of each row (the whole test set here: row i is test digit i)
    assert arrays["test_index"].dtype == np.int32
    np.testing.assert_array_equal(arrays["test_index"], np.arange(300))


def test_payload_names_a_subset_atlas_rows_by_their_test_index(em, spacing):
    import dataclasses

    rows = np.arange(0, 600, 2, dtype=np.int32)  # as if the atlas held every other test digit
    sub = dataclasses.replace(em, atlas=dataclasses.replace(em.atlas, test_index=rows))
    _, arrays = studio.read_payload(studio.model_payload(sub, spacing))
    np.testing.assert_array_equal(arrays["test_index"], rows)


def test_decoder_payload_holds_the_decoder_only_and_decodes_like_the_app(em):
    header, arrays = studio.read_payload(studio.decoder_payload(em))
    assert header["kind"] == "decoder" and header["id"] == studio.model_id(em)
    assert set(arrays) == {name for layer in header["layers"] for name in (layer["weight"], layer["bias"])}
    assert "thresholds" not in header and "spacing" not in header
    z = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    act = ACTIVATIONS[header["activation"]]
    h = z.astype(np.float64)
    for i, layer in enumerate(header["layers"]):
        h = h @ arrays[layer["weight"]].T.astype(np.float64) + arrays[layer["bias"]]
        h = act(h) if i < len(header["layers"]) - 1 else h
    np.testing.assert_allclose(1 / (1 + np.exp(-h)), codes.decode_pixels(em.model, z).reshape(4, -1), atol=1e-5, rtol=0)
    assert studio.decoder_payload(em) == studio.decoder_payload(em)  # byte-identical: sent once


def test_payload_layout_is_aligned_and_arrays_do_not_overlap(payload):
    header, _ = studio.read_payload(payload)
    version, n = struct.unpack("<II", payload[4:12])
    assert version == studio.PAYLOAD_VERSION and n % 4 == 0
    blob_start = 12 + n
    assert blob_start % 4 == 0  # so offsets that are multiples of 4 are aligned in the whole buffer too
    spans = []
    for name, spec in header["arrays"].items():
        itemsize = 1 if spec["dtype"] == "uint8" else 4
        assert spec["dtype"] in ("float32", "int32", "uint8"), name
        if itemsize == 4:  # typed-array views in the browser need 4-byte alignment
            assert spec["offset"] % 4 == 0, name
            assert (blob_start + spec["offset"]) % 4 == 0, name
        spans.append((spec["offset"], spec["offset"] + itemsize * int(np.prod(spec["shape"])), name))
    spans.sort()
    for (_, end, name), (start, _, nxt) in zip(spans, spans[1:]):
        assert end <= start, f"{name} overlaps {nxt}"
    assert spans[-1][1] <= len(payload) - blob_start  # the last array lies inside the payload


def test_payload_is_deterministic(em, spacing, payload):
    """Streamlit's message cache only spares resending the payload if it is byte-identical each rerun."""
    assert studio.model_payload(em, spacing) == payload


def test_payload_layers_decode_like_the_app(em, payload):
    header, arrays = studio.read_payload(payload)
    act = ACTIVATIONS[header.get("activation", "relu")]
    rng = np.random.default_rng(0)
    zs = rng.normal(size=(5, header["latent_dim"])).astype(np.float32) * 1.5
    for z in zs:
        h = z.astype(np.float64)
        layers = header["layers"]
        for i, layer in enumerate(layers):
            h = arrays[layer["weight"]].astype(np.float64) @ h + arrays[layer["bias"]]
            if i < len(layers) - 1:
                h = act(h)
        pixels = 1.0 / (1.0 + np.exp(-h))
        want = codes.decode_pixels(em.model, z).reshape(-1)
        np.testing.assert_allclose(pixels, want, atol=1e-5, rtol=0)


def test_read_payload_rejects_wrong_magic_and_version(payload):
    with pytest.raises(ValueError):
        studio.read_payload(b"XXXX" + payload[4:])
    with pytest.raises(ValueError):
        studio.read_payload(payload[:4] + struct.pack("<I", studio.PAYLOAD_VERSION + 1) + payload[8:])
    with pytest.raises(ValueError):
        studio.read_payload(b"VAES\x01")  # too short to hold a version and header length
    with pytest.raises(ValueError):
        studio.read_payload(b"")


# --- plausibility -----------------------------------------------------------------------------

def test_neighbour_spacing_on_a_regular_line():
    mu = np.stack([np.arange(10.0), np.zeros(10)], axis=1)  # points 1 apart on a line
    s = studio.neighbour_spacing(mu)
    assert isinstance(s, studio.NeighbourSpacing)
    assert s.median == pytest.approx(1.0) and s.p95 == pytest.approx(1.0) and s.p99 == pytest.approx(1.0)


def test_neighbour_spacing_quantiles_on_uneven_points():
    # nearest-neighbour distances: 1, 1, 2, 3, 4 (sorted) -> np.quantile with linear interpolation
    mu = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    s = studio.neighbour_spacing(mu)
    assert s.median == pytest.approx(2.0)
    assert s.p95 == pytest.approx(3.8)
    assert s.p99 == pytest.approx(3.96)
    assert all(type(v) is float for v in asdict(s).values())


def test_neighbour_spacing_uses_euclidean_distance_in_all_dims():
    mu = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])  # 5 apart
    assert studio.neighbour_spacing(mu).median == pytest.approx(5.0)


def test_verdict_thresholds():
    s = studio.NeighbourSpacing(median=0.5, p95=1.0, p99=2.0)
    assert studio.verdict(0.0, s) == "typical"
    assert studio.verdict(1.0, s) == "typical"  # p95 itself is typical
    assert studio.verdict(1.0001, s) == "sparse"
    assert studio.verdict(6.0, s) == "sparse"  # 3 * p99 itself is sparse
    assert studio.verdict(6.0001, s) == "hole"
    assert studio.verdict(100.0, s) == "hole"


def test_thresholds_are_the_verdicts_cut_offs():
    s = studio.NeighbourSpacing(median=0.5, p95=1.0, p99=2.0)
    t = studio.thresholds(s)
    assert t == studio.Thresholds(typical_max=1.0, sparse_max=6.0)
    for d in (0.0, 0.999, 1.0, 1.001, 5.99, 6.0, 6.01, 50.0):
        want = "typical" if d <= t.typical_max else "sparse" if d <= t.sparse_max else "hole"
        assert studio.verdict(d, s) == want


def test_tsne_place_marks_a_hole_off_the_data_and_places_the_rest_by_knn(em, spacing):
    from explorer.projection import knn_place

    a = em.atlas
    near = a.mu[5] + 0.01
    place = studio.tsne_place(near, a.mu, a.tsne, spacing)
    assert not place.off_data
    np.testing.assert_allclose(place.xy, knn_place(near, a.mu, a.tsne, studio.TSNE_NEIGHBOURS), rtol=1e-6)
    far = np.full(8, 4.0, np.float32)  # every slider at its end: far from every test code
    assert studio.plausibility(far, a.mu, spacing).verdict == "hole"
    assert studio.tsne_place(far, a.mu, a.tsne, spacing) == studio.MapPlace(None, True)


def test_digit_phrase_uses_an_before_eight():
    assert [studio.digit_phrase(d) for d in (0, 1, 8, 9)] == ["a 0", "a 1", "an 8", "a 9"]
    assert studio.digit_phrase(np.uint8(8)) == "an 8"


def test_plausibility_finds_the_nearest_code():
    mu = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=np.float32)
    s = studio.NeighbourSpacing(median=1.0, p95=1.0, p99=1.0)
    p = studio.plausibility(np.array([9.0, 0.5]), mu, s)
    assert p.nearest == 1 and p.distance == pytest.approx(math.hypot(1.0, 0.5)) and p.verdict == "sparse"
    p = studio.plausibility(np.array([0.0, 9.5]), mu, s)
    assert p.nearest == 2 and p.distance == pytest.approx(0.5) and p.verdict == "typical"
    p = studio.plausibility(np.array([5.0, 5.0]), mu, s)
    assert p.distance == pytest.approx(math.hypot(5.0, 5.0)) and p.verdict == "hole"
    assert type(p.nearest) is int and type(p.distance) is float


def test_plausibility_of_a_test_code_is_zero(em, spacing):
    p = studio.plausibility(em.atlas.mu[17], em.atlas.mu, spacing)
    assert p.distance == pytest.approx(0.0, abs=1e-6) and p.verdict == "typical"
    assert np.allclose(em.atlas.mu[p.nearest], em.atlas.mu[17])


# --- view ------------------------------------------------------------------------------------

def test_kl_order_active_first_then_inactive_each_by_descending_kl():
    kl = np.array([0.1, 0.9, 0.5, 0.05, 0.7, 0.3])
    active = np.array([False, True, True, False, False, True])
    assert studio.kl_order(kl, active) == [1, 2, 5, 4, 0, 3]
    # an inactive dimension with larger KL than every active one still comes after them
    assert studio.kl_order([5.0, 0.1, 0.2], [False, True, True]) == [2, 1, 0]
    assert studio.kl_order([0.3, 0.2], [True, True]) == [0, 1]
    assert studio.kl_order([], []) == []


def test_view_data_is_small_json_and_follows_the_inputs(em):
    code = np.array([0.25, -1.3, 0.0, 4.0, -4.0, 0.05, 1.0, 2.5], dtype=np.float32)
    view = studio.view_data(em, code, 7, "t-SNE")
    text = json.dumps(view)  # raises on numpy scalars / arrays
    assert len(text.encode()) < 2000
    assert view["code"] == pytest.approx([float(v) for v in code])
    assert all(type(v) is float for v in view["code"])
    assert view["rev"] == 7 and type(view["rev"]) is int
    assert view["projection"] == "t-SNE"
    assert view["model"] == studio.model_id(em)
    assert view["order"] == studio.kl_order(em.atlas.kl_per_dim, em.atlas.active)
    assert sorted(view["order"]) == list(range(8))
    assert view["active"] == [bool(v) for v in em.atlas.active]
    assert view["kl"] == pytest.approx(em.atlas.kl_per_dim.tolist(), abs=1e-3)
    assert view["limit"] == codes.SLIDER_LIMIT and view["step"] == state.SLIDER_STEP
    assert view["strip"] == list(studio.STRIP_VALUES)
    assert json.loads(text) == view
    assert studio.view_data(em, code, np.int64(3), "PCA")["rev"] == 3
    assert view["family"] == [] and view["band"] is None


def test_view_data_carries_the_family_and_the_band(em):
    band = studio.make_band("clicked test digit #3", em.atlas.mu[3], np.exp(0.5 * em.atlas.logvar[3]), em, 4)
    family = [studio.family_entry(em, em)]
    view = studio.view_data(em, em.atlas.mu[3], 4, "PCA", family=family, band=band)
    assert json.loads(json.dumps(view)) == view
    assert view["family"] == [{"id": studio.model_id(em), "name": em.name, "label": em.name.rsplit("/", 1)[-1], "open": True}]
    assert view["band"]["what"] == "clicked test digit #3"
    assert view["band"]["mu"] == pytest.approx(em.atlas.mu[3].tolist(), abs=1e-4)
    assert view["band"]["sigma"] == pytest.approx(np.exp(0.5 * em.atlas.logvar[3]).tolist(), abs=1e-4)
    assert len(json.dumps(view).encode()) < 2500


# --- family and band --------------------------------------------------------------------------

def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")
    return folder


def test_family_paths_lists_the_folder_in_display_order(em, tmp_path):
    import dataclasses

    top = _touch(tmp_path, "default.pt")
    beta = _touch(tmp_path / "beta", "beta-8.pt", "beta-0.25.pt", "beta-2.pt", "beta-2.last.pt")
    ladder = _touch(tmp_path / "ladder", "vae.pt", "ae.pt", "ae-noise-kl.pt", "ae-noise.pt")
    at = lambda path: dataclasses.replace(em, path=path)  # noqa: E731
    assert studio.family_paths(at(top / "default.pt"), tmp_path) == []  # top level: no family
    assert [p.name for p in studio.family_paths(at(beta / "beta-2.pt"), tmp_path)] == ["beta-0.25.pt", "beta-2.pt", "beta-8.pt"]
    assert [p.stem for p in studio.family_paths(at(ladder / "ae.pt"), tmp_path)] == list(studio.LADDER_ORDER)


def test_band_follows_its_revision_and_model(em):
    sigma = np.full(8, 0.5)
    band = studio.make_band("your drawing", em.atlas.mu[0], sigma, em, 3)
    assert band.mu == tuple(float(v) for v in em.atlas.mu[0]) and band.rev == 3 and band.model == studio.model_id(em)
    other = studio.make_band("your upload", em.atlas.mu[1], sigma, em, 5)
    assert studio.band_to_show(other, band, em, 5) is other  # a new digit wins
    assert studio.band_to_show(None, band, em, 3) is band  # releases keep the revision: the band stays
    assert studio.band_to_show(None, band, em, 4) is None  # a reset or a prior draw: no digit, no band
    import dataclasses
    moved = dataclasses.replace(em, sha256="f" * 64)
    assert studio.band_to_show(None, band, moved, 3) is None  # another model: its posterior differs


# --- state ------------------------------------------------------------------------------------

def _on_grid(v: float) -> bool:
    return abs(v / state.SLIDER_STEP - round(v / state.SLIDER_STEP)) < 1e-9 and v == round(v, 2)


def test_set_code_bumps_rev_snaps_and_clips():
    s: dict = {}
    cs = state.set_code(s, [0.124, 0.126, -7.0, 9.5, -0.01, 1.0], "first")
    assert cs.z == (0.1, 0.15, -4.0, 4.0, 0.0, 1.0)
    assert all(type(v) is float and _on_grid(v) for v in cs.z)
    assert math.copysign(1.0, cs.z[4]) == 1.0  # no -0.0
    assert cs.rev == 1 and cs.source == "first" and cs.anchor == cs.z and cs.shown() == cs.z
    assert s[state.CODE_KEY] is cs
    cs2 = state.set_code(s, np.array([1.0, 2.0, 3.0, 4.0, 5.0, -0.333]), "second")
    assert cs2.rev == 2 and cs2.source == "second" and cs2.z[-1] == -0.35
    assert state.current_code(s, 6).dtype == np.float32
    np.testing.assert_allclose(state.current_code(s, 6), cs2.z, atol=1e-6)


def test_current_creates_zeros_and_resets_on_a_new_dimension():
    s: dict = {}
    cs = state.current(s, 4)
    assert cs.z == (0.0, 0.0, 0.0, 0.0) and cs.rev == 0 and s[state.CODE_KEY] is cs
    assert state.current(s, 4) is cs  # same size: kept
    state.set_code(s, [1.0, 1.0, 1.0, 1.0], "x")
    assert state.current(s, 4).z == (1.0, 1.0, 1.0, 1.0)
    reset = state.current(s, 3)
    assert reset.z == (0.0, 0.0, 0.0) and reset.rev == 2  # rev bumped so the studio follows the reset
    s[state.CODE_KEY] = "junk"
    assert state.current(s, 2) == state.CodeState((0.0, 0.0), 0, "start", (0.0, 0.0))


def test_take_release_keeps_rev_and_anchor():
    s: dict = {}
    before = state.set_code(s, [0.5, -0.5, 0.0], "a map click")
    assert state.take_release(s, {"z": [1.234, -9.0, 0.02]}, 3) is True
    cs = s[state.CODE_KEY]
    assert cs.z == (1.25, -4.0, 0.0)
    assert cs.rev == before.rev and cs.source == state.STUDIO == "sliders"
    assert cs.anchor == before.z and cs.shown() == before.z  # the studio's input stays the same while dragging
    assert state.take_release(s, {"z": [2.0, 2.0, 2.0]}, 3) is True
    assert s[state.CODE_KEY].rev == before.rev and s[state.CODE_KEY].shown() == before.z
    assert state.set_code(s, [0.0, 0.0, 0.0], "button").rev == before.rev + 1


def test_take_release_on_empty_state_starts_from_zeros():
    s: dict = {}
    assert state.take_release(s, {"z": [1, 2]}, 2) is True
    assert s[state.CODE_KEY].z == (1.0, 2.0) and s[state.CODE_KEY].rev == 0 and s[state.CODE_KEY].shown() == (0.0, 0.0)


@pytest.mark.parametrize("value", [
    None, "1,2,3", [1.0, 2.0, 3.0], {}, {"z": None}, {"z": (1.0, 2.0, 3.0)}, {"z": np.zeros(3)},
    {"z": [1.0, 2.0]}, {"z": [1.0, 2.0, 3.0, 4.0]}, {"z": []},
    {"z": [1.0, float("nan"), 3.0]}, {"z": [1.0, float("inf"), 3.0]}, {"z": [float("-inf"), 0.0, 0.0]},
    {"z": ["a", "b", "c"]}, {"z": [1.0, "x", 3.0]}, {"z": [1.0, None, 3.0]}, {"z": [1.0, [2.0], 3.0]},
    {"z": [1.0, {"v": 2}, 3.0]}, {"z": ["nan", 0.0, 0.0]},
])
def test_take_release_rejects_malformed_values(value):
    s: dict = {}
    before = state.set_code(s, [0.5, 0.5, 0.5], "before")
    assert state.take_release(s, value, 3) is False
    assert s[state.CODE_KEY] is before and set(s) == {state.CODE_KEY}


def test_take_release_rejects_strings_of_numbers():
    """The studio sends {"z": [numbers]}; a list of strings is malformed even if they read as numbers."""
    s: dict = {}
    before = state.set_code(s, [0.5, 0.5, 0.5], "before")
    assert state.take_release(s, {"z": ["1", "2", "3"]}, 3) is False
    assert s[state.CODE_KEY] is before


def test_take_release_rejects_an_int_too_large_for_a_float_without_raising():
    """take_release promises False on malformed input; float(10**400) raises OverflowError."""
    s: dict = {}
    before = state.set_code(s, [0.5, 0.5, 0.5], "before")
    assert state.take_release(s, {"z": [10**400, 0, 0]}, 3) is False
    assert s[state.CODE_KEY] is before


def test_select_digit_loads_the_posterior_mean():
    mu = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32) * 3
    mu[7, 0] = 6.3  # past the slider range: clipped
    s: dict = {}
    state.set_code(s, [0.0] * 4, "start")
    state.select_digit(s, 7, mu)
    cs = s[state.CODE_KEY]
    assert s[state.SELECTED_KEY] == 7 and s[state.NOISE_KEY] == state.clicked_label(7)
    assert cs.z == state.snap(mu[7]) and cs.z[0] == 4.0
    np.testing.assert_allclose(cs.z, np.round(np.clip(mu[7], -4, 4) / 0.05) * 0.05, atol=1e-6)
    assert cs.rev == 2 and cs.source == state.clicked_label(7) and cs.anchor == cs.z


def test_on_map_select_with_a_plotly_selection():
    mu = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    s: dict = {state.MAP_KEY: {"selection": {"points": [{"customdata": [5]}]}}}
    assert state.on_map_select(s, mu) == 5
    assert s[state.SELECTED_KEY] == 5 and s[state.CODE_KEY].z == state.snap(mu[5])
    assert s[state.CODE_KEY].rev == 1
    # another widget key
    s2: dict = {"other": {"selection": {"points": [{"customdata": 3}]}}}
    assert state.on_map_select(s2, mu, key="other") == 3 and s2[state.SELECTED_KEY] == 3
    # an index past the test set or a negative one changes nothing
    for bad in (10, -1):
        s3: dict = {state.MAP_KEY: {"selection": {"points": [{"customdata": [bad]}]}}}
        assert state.on_map_select(s3, mu) is None and s3 == {state.MAP_KEY: s3[state.MAP_KEY]}


@pytest.mark.parametrize("selection, want", [
    ({"selection": {"points": [{"customdata": [5]}]}}, 5),
    ({"selection": {"points": [{"customdata": 5}]}}, 5),
    ({"selection": {"points": [{"customdata": (5, "extra")}]}}, 5),
    ({"selection": {"points": [{"customdata": "8"}]}}, 8),
    ({"selection": {"points": [{"customdata": []}, {"customdata": [9]}]}}, 9),
    ({"selection": {"points": [{"customdata": "x"}, {"customdata": 4}]}}, 4),
    ({"selection": {"points": ["junk", {"customdata": 2}]}}, 2),
    ({"selection": {"points": [{"x": 1}]}}, None),
    ({"selection": {"points": []}}, None),
    ({"selection": {}}, None),
    ({}, None),
    (None, None),
    ("junk", None),
])
def test_selected_point(selection, want):
    assert state.selected_point(selection) == want


def test_snap_returns_python_floats_on_the_grid():
    z = state.snap(np.array([0.024, 0.026, -0.026, 3.99, -4.2, 0.0], dtype=np.float32))
    assert z == (0.0, 0.05, -0.05, 4.0, -4.0, 0.0)
    assert all(type(v) is float for v in z)
    rng = np.random.default_rng(3)
    assert all(_on_grid(v) and abs(v) <= 4.0 for v in state.snap(rng.normal(size=200) * 3))
