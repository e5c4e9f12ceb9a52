"""The tug-of-war page through AppTest: on the shipped models (read-only) it tells the training story,
draws the curves, the map over training and the beta sweep, and links a beta to the explorer; on a
folder without records or sweep it says so. Browser-side behaviour (play, click a point) is in
test_browser.py.

AppTest cannot switch to a callable st.Page, so the page runs on its own (`render()`), as
st.navigation runs it; test_browser.py opens it through the real navigation.
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from app import tug_page
from explorer import state
from explorer.bundle import MODELS_DIR_ENV
from tests.test_app import APP, TIMEOUT

PAGE = "from app.tug_page import render\nrender()"


def figure(at: AppTest, title_part: str) -> dict:
    """The page's plotly figure (JSON) whose title or subplot titles hold `title_part`."""
    for spec in (json.loads(e.proto.spec) for e in at.get("plotly_chart")):
        layout = spec.get("layout", {})
        text = json.dumps([layout.get("title", ""), layout.get("annotations", [])], ensure_ascii=False)
        if title_part in text:
            return spec
    raise AssertionError(f"no figure titled {title_part!r}")


def link_url(at: AppTest) -> str:
    return next(e.proto.url for e in at.get("link_button"))


@pytest.fixture(scope="module")
def shipped() -> AppTest:
    """The page on the shipped models folder, as a fresh clone has it."""
    mp = pytest.MonkeyPatch()
    mp.delenv(MODELS_DIR_ENV, raising=False)
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.run()
    mp.undo()
    assert not at.exception, at.exception
    return at


def test_the_page_tells_how_the_default_model_learnt(shipped):
    assert [h.value for h in shipped.header] == ["1 · How the VAE learnt", "2 · What beta does"]
    assert not shipped.warning and not shipped.error
    picker = shipped.selectbox(key=tug_page.MODEL_KEY)
    assert picker.value == picker.options[0] and "beta / beta-1" in picker.options
    story = next(m.value for m in shipped.markdown if m.value.startswith("Over "))
    assert "nats" in story and "epochs" in story
    curves = figure(shipped, "reconstruction error −log p(x|z)")
    assert {t["name"] for t in curves["data"]} == {"train", "test"} and curves["layout"]["xaxis"]["type"] == "linear"
    units = figure(shipped, "KL per unit")
    assert {t["name"] for t in units["data"]} == {f"z{u}" for u in range(8)}
    moving = figure(shipped, "codes of 2,000 test digits")
    epochs = [f["name"] for f in moving["frames"]]
    assert epochs[0] == "0" and len(epochs) >= 9 and len(epochs) == len(moving["layout"]["sliders"][0]["steps"])


def test_every_recorded_model_can_be_shown(shipped):
    at = shipped
    options = [o.replace(" / ", "/") for o in at.selectbox(key=tug_page.MODEL_KEY).options]
    # the VAEs only: the ladder's autoencoders (no learnt noise) have their own page, not this story
    assert "default" in options and "ladder/vae" in options and "ladder/ae" not in options and "ladder/ae-noise-kl" not in options
    for name in at.selectbox(key=tug_page.MODEL_KEY).options:
        at.selectbox(key=tug_page.MODEL_KEY).set_value(name.replace(" / ", "/")).run()
        assert not at.exception, (name, at.exception)
        assert any(m.value.startswith("Over ") for m in at.markdown)


def test_a_bigger_beta_shows_less_information_more_noise_and_links_to_the_explorer(shipped):
    at = shipped
    slider = at.select_slider(key=tug_page.BETA_KEY)
    assert slider.value == "beta/beta-1" and len(slider.options) == 6

    def shown() -> dict[str, str]:
        return {m.label: m.value for m in at.metric}

    slider.set_value("beta/beta-0.25").run()
    low = shown()
    at.select_slider(key=tug_page.BETA_KEY).set_value("beta/beta-8").run()
    high = shown()
    assert not at.exception
    assert int(high["active units"].split()[0]) <= int(low["active units"].split()[0])
    assert float(high["mean σ"]) > float(low["mean σ"])
    assert float(high["KL (rate)"].split()[0]) < float(low["KL (rate)"].split()[0])
    assert any(s.value == "β = 8" for s in at.subheader)
    at.session_state[state.CODE_KEY] = state.CodeState((0.5, -1.0, 0, 0, 0, 0, 0, 2.0), 1, "test", None)
    at.run()
    url = urlsplit(link_url(at))
    query = parse_qs(url.query)
    assert url.path == "./" and query["model"] == ["beta/beta-8"] and query["z"] == ["0.5,-1,0,0,0,0,0,2"]
    rd = figure(at, "rate (KL) against distortion")
    assert rd["data"][0]["customdata"][-1] == "beta/beta-8" and any("shipped" in t["name"] for t in rd["data"])


def test_the_sweep_text_is_computed_from_the_sweep_and_its_maps_share_labelled_axes(shipped):
    """No "units collapse" while every beta shows all units active; every beta's map on the same
    fixed, labelled axes, so codes crowding toward the centre show as a smaller cloud."""
    at = shipped
    sweep = [(m, tug_page.tug.sweep_point(n, m.atlas)) for n, m in tug_page._load_all().items() if n.startswith("beta/")]
    points = tug_page.tug.sorted_sweep([p for _, p in sweep])
    story = next(m.value for m in at.markdown if m.value.startswith("The same network trained"))
    if all(p.active_units == p.latent_dim for p in points):
        assert "collapse to the prior" not in story and f"all {points[0].latent_dim} of {points[0].latent_dim} stay active" in story
    assert f"from {points[0].kl:.1f} to {points[-1].kl:.1f} nats" in story
    assert f"{points[0].median_norm:.2f} → {points[-1].median_norm:.2f}" in story
    ranges = []
    for name in ("beta/beta-0.25", "beta/beta-8"):
        at.select_slider(key=tug_page.BETA_KEY).set_value(name).run()
        fig = figure(at, "axes shared by the sweep")
        x, y = fig["layout"]["xaxis"], fig["layout"]["yaxis"]
        assert x["showticklabels"] and y["showticklabels"] and x["title"]["text"].startswith("PC 1")
        ranges.append((tuple(x["range"]), tuple(y["range"])))
        caption = " ".join(c.value for c in at.caption)
        assert f"axes fixed for every β ({x['range'][0]:g} to {x['range'][1]:g})" in caption
    assert ranges[0] == ranges[1]


def test_the_link_opens_that_beta_in_the_explorer_with_the_code(monkeypatch):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"model": "beta/beta-8", "z": "0.5,-1,0,0,0,0,0,2", "map": "pca"})
    at.run()
    assert not at.exception and not at.warning
    assert at.sidebar.selectbox[0].value == "beta/beta-8.pt"
    assert at.session_state[state.CODE_KEY].z == (0.5, -1.0, 0, 0, 0, 0, 0, 2.0)


def test_without_records_or_sweep_the_page_says_how_to_make_them(tiny_models_dir, monkeypatch, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny_models_dir, folder)
    (folder / "broken.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setenv(MODELS_DIR_ENV, str(folder))
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "python -m training.recipes default" in infos and "python -m training.recipes beta" in infos
    assert len(at.warning) == 1 and at.warning[0].value.startswith("broken is left out:")
