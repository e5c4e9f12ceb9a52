"""The "Make and keep" panel through AppTest: interpolation, traversal grid and the code file.

The files themselves (PNG, GIF, JSON) are tested as plain functions in test_make.py, and a browser
test downloads one; here the panel's wiring: what it offers, what loading does to the one code.
"""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from explorer import codes, exports, state
from explorer.bundle import MODELS_DIR_ENV
from tests.test_app import APP, TIMEOUT, code, code_caption


@pytest.fixture
def app(tiny_models_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))
    return opened(AppTest.from_file(APP, default_timeout=TIMEOUT))


def opened(at: AppTest) -> AppTest:
    """Run a new session twice: its first run holds the map and this panel back (test_app.py)."""
    at.run()
    assert not at.get("download_button")
    at.run()
    assert not at.exception, at.exception
    return at


def downloads(at: AppTest) -> dict[str, str]:
    """Download buttons by label -> their media URL, or their deferred file id (made on click)."""
    return {b.proto.label: b.proto.url or b.proto.deferred_file_id for b in at.get("download_button")}


def image_captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def show(at: AppTest, view: str) -> AppTest:
    return at.segmented_control(key="keep_view").set_value(view).run()


def test_the_panel_offers_its_downloads_in_each_view(app):
    assert app.segmented_control(key="keep_view").options == ["Interpolate", "Traversal grid", "Code (JSON)"]
    assert sorted(downloads(app)) == ["Download GIF", "Download PNG"] and all(downloads(app).values())
    assert list(downloads(show(app, "Traversal grid"))) == ["Download PNG"]
    assert list(downloads(show(app, "Code (JSON)"))) == ["Download code (JSON)"]


def tiny_model(tiny_models_dir):  # noqa: ANN201
    from explorer.bundle import load_explorer_model

    return load_explorer_model(tiny_models_dir / "default.pt")


def test_interpolation_frames_load_into_the_studio(app, tiny_models_dir):
    state.set_code(app.session_state, [2.0, 0, 0, 0, 0, 0, 0, 0], "a test")
    app.run()
    app.selectbox(key="interp_to").set_value("mean of the 7s").run()
    app.slider(key="interp_steps").set_value(6).run()
    assert any(c.startswith("6 frames from the current code to mean of the 7s (slerp") for c in image_captions(app))
    app.select_slider(key="interp_frame").set_value(5).run()
    app.button(key="btn_load_frame").click().run()
    assert not app.exception
    m = tiny_model(tiny_models_dir)
    assert "Code from **frame 6 of the current code → mean of the 7s**" in code_caption(app)
    assert code(app) == state.snap(codes.class_means(m.atlas.mu, m.atlas.labels)[7])  # the last frame is the end
    assert code(app) != (2.0,) + (0.0,) * 7 and app.query_params["z"] != "2,0,0,0,0,0,0,0"  # the URL follows
    app.radio(key="interp_method").set_value("linear").run()
    assert any(c.startswith("6 frames from the current code to mean of the 7s (linear")
               for c in image_captions(app))


def test_the_last_frame_is_the_end_code(app, tiny_models_dir):
    m = tiny_model(tiny_models_dir)
    mean3 = codes.class_means(m.atlas.mu, m.atlas.labels)[3]
    app.selectbox(key="interp_to").set_value("mean of the 3s").run()
    app.select_slider(key="interp_frame").set_value(9).run()
    app.button(key="btn_load_frame").click().run()
    assert code(app) == state.snap(mean3)


def test_the_traversal_grid_goes_around_a_clicked_digit_in_its_sigma(app, tiny_models_dir):
    show(app, "Traversal grid")
    assert any(c.startswith("Rows, top to bottom (rows by KL") for c in image_captions(app))
    state.select_digit(app.session_state, 4, tiny_model(tiny_models_dir).atlas.mu)
    # AppTest checks a radio's value against its last run's options (the start digit's): keep that one
    app.session_state[state.NOISE_KEY] = app.radio(key=state.NOISE_KEY).options[0]
    app.run()
    option = next(o for o in app.radio(key="grid_centre").options if o.startswith("test digit #4"))
    app.radio(key="grid_centre").set_value(option).run()
    caption = next(c for c in image_captions(app) if c.startswith("Rows, top to bottom"))
    assert "its sigma around test digit #4" in caption and "-2 … +2" in caption


def test_the_code_file_shows_the_current_code(app):
    show(app, "Code (JSON)")
    state.set_code(app.session_state, [0.5, -1.0, 0, 0, 0, 0, 0, 0], "a test")
    app.run()
    shown = code_file(app)
    assert shown["model"] == "default" and shown["z"][:2] == [0.5, -1.0] and shown["source"] == "a test"


def code_file(at: AppTest) -> dict:
    """The code file the panel offers (its Code view shown first)."""
    if at.session_state["keep_view"] != "Code (JSON)":
        show(at, "Code (JSON)")
    return json.loads(at.code[0].value)


def _paste_and_load(at: AppTest, text: str) -> AppTest:
    if at.session_state["keep_view"] != "Code (JSON)":
        show(at, "Code (JSON)")
    at.text_area(key="code_paste").input(text).run()
    return at.button(key="btn_load_code").click().run()


def test_a_pasted_code_file_restores_the_view(app):
    sha = code_file(app)["checkpoint_sha256"]
    cf = exports.CodeFile("default", sha, (1.0, 0, 0, 0, 0, 0, 0, -2.0), "someone's slide", "PCA", 12)
    _paste_and_load(app, exports.code_json(cf))
    assert not app.exception and not app.error and not app.warning, [w.value for w in app.warning]
    assert code(app) == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0)
    assert "Code from **the code file**" in code_caption(app)
    assert app.session_state["projection"] == "PCA" and app.session_state[state.SELECTED_KEY] == 12
    assert app.query_params["z"] == "1,0,0,0,0,0,0,-2" and app.query_params["map"] == "pca"


def test_a_code_file_of_another_model_switches_to_it(tmp_path, tiny_models_dir, monkeypatch):
    for stem in ("default", "other"):
        shutil.copy(tiny_models_dir / "default.pt", tmp_path / f"{stem}.pt")
        shutil.copy(tiny_models_dir / "default.atlas.npz", tmp_path / f"{stem}.atlas.npz")
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    at = opened(AppTest.from_file(APP, default_timeout=TIMEOUT))
    sha = code_file(at)["checkpoint_sha256"]
    _paste_and_load(at, exports.code_json(exports.CodeFile("other", sha, (0.5,) * 8, "x")))
    assert at.sidebar.selectbox[0].value == "other.pt" and code(at) == (0.5,) * 8 and not at.warning


@pytest.mark.parametrize("change,expected", [
    ({"model": "nope"}, "“nope”, which is not in the models folder"),
    ({"checkpoint_sha256": "ab" * 32}, "another version of default"),
])
def test_a_stale_code_file_loads_with_a_notice(app, change, expected):
    data = code_file(app)
    data.update(change)
    _paste_and_load(app, json.dumps(data))
    assert not app.error and len(app.warning) == 1 and expected in app.warning[0].value
    app.button(key="btn_reset").click().run()
    assert not app.warning  # said once


@pytest.mark.parametrize("text,expected", [
    ("not json at all", "JSON"),
    ('{"format": "vae-explorer-code", "version": 1}', "model"),
    ("", "Choose a code file or paste one first"),
])
def test_a_bad_code_file_gets_one_message_and_changes_nothing(app, text, expected):
    before = code(app)
    _paste_and_load(app, text)
    assert not app.exception and len(app.error) == 1
    assert app.error[0].value.startswith("Cannot load the code:") and expected in app.error[0].value
    assert code(app) == before


def test_an_uploaded_code_file_restores_the_code(app):
    sha = code_file(app)["checkpoint_sha256"]
    text = exports.code_json(exports.CodeFile("default", sha, (-1.5,) + (0.0,) * 7, "upload"))
    app.file_uploader(key="code_upload").set_value(("code.json", text.encode(), "application/json")).run()
    app.button(key="btn_load_code").click().run()
    assert not app.error and code(app)[0] == -1.5


# --- one truth: the panel follows the studio ---------------------------------------------------

def follower(at: AppTest) -> dict | None:
    """The data of the panel's follower component (follow.js), or None if it is not mounted."""
    for e in at.main:
        p = getattr(e, "proto", None)
        if type(p).__name__ == "BidiComponent" and p.component_name.endswith("vae_follow"):
            return json.loads(p.json)
    return None


def test_there_is_no_refresh_and_the_panel_follows_a_release(app):
    assert not [b for b in app.button if b.label == "Refresh"]
    show(app, "Code (JSON)")
    assert follower(app)["follow"] is True  # the code view is made from the current code
    state.take_release(app.session_state, {"z": [0, 0, 0, 0, 0, 0, 0, 4.0]}, 8)  # what a release (or the follower) writes
    app.run()
    shown = code_file(app)
    assert shown["z"][7] == 4.0 and shown["source"] == "sliders"
    caption = next(c.value for c in app.caption if c.value.startswith("“The current code” is the studio's"))
    assert "+4.00]" in caption and "follows the studio" in caption
    assert list(downloads(app)) == ["Download code (JSON)"]


def test_the_follower_listens_only_while_the_panel_shows_the_current_code(app):
    assert follower(app)["follow"] is True  # interpolation from the current code, the default
    app.selectbox(key="interp_from").set_value("mean of the 3s").run()
    assert follower(app)["follow"] is False
    show(app, "Traversal grid")
    assert follower(app)["follow"] is True  # around the current code, the default


def test_a_download_is_made_from_the_code_of_the_click(app, tiny_models_dir):
    """The code file's data is made when the button is clicked, from the live code: a release that
    the panel has not yet followed is in it (AppTest has no runtime to click a deferred download,
    so the function behind it is called here)."""
    from app import keep_panel

    m = tiny_model(tiny_models_dir)
    box = state.live(app.session_state)
    shown = code_file(app)
    state.take_release(app.session_state, {"z": [1.0] * 8}, 8)  # no rerun: the panel still shows the old code
    text = keep_panel.code_file_text(m, box.cs, "t-SNE", None)
    assert json.loads(text)["z"] == [1.0] * 8 and shown["z"] != [1.0] * 8
