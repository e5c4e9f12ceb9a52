"""The real Streamlit app driven by AppTest: start-up, the one code, buttons, upload, bad upload, links.

AppTest cannot drag the studio's sliders (they live in the browser; test_browser.py drags them):
here the code goes in through session state, links and buttons, and what the server shows comes out.

Most tests run on a tiny model in a temp folder ($VAE_EXPLORER_MODELS); one starts on the shipped
default model exactly as `streamlit run streamlit_app.py` does.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from explorer import state
from explorer.bundle import MODELS_DIR_ENV
from explorer.studio import read_payload

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 120  # the first run imports torch and plotly; CI machines are slow


def code(at: AppTest) -> tuple[float, ...]:
    return at.session_state[state.CODE_KEY].z


def code_caption(at: AppTest) -> str:
    """The server's line about the current code (source, values, nearest test digit, verdict)."""
    return next(c.value for c in at.caption if c.value.startswith("Code from"))


def nearest_image_url(at: AppTest) -> str:
    """The media URL of the strip of test digits nearest the code (named by a hash of its bytes)."""
    for img in at.image:
        if any(c.startswith("the test digits that encode nearest") for c in img.captions):
            return img.value[0]
    raise AssertionError(f"no nearest-digits image among {[i.captions for i in at.image]}")


def studio_elements(at: AppTest) -> dict[str, object]:
    """The studio's two component elements by key suffix: the view (JSON) and the payload (bytes)."""
    found = {}
    for e in at.main:
        p = getattr(e, "proto", None)
        if type(p).__name__ == "BidiComponent" and p.component_name == "vae_studio":
            found[p.id.rsplit("-", 1)[-1]] = json.loads(p.json) if p.json else bytes(p.bytes)
    return found


def png_of_seven() -> bytes:
    img = Image.new("L", (120, 160), 255)
    d = ImageDraw.Draw(img)
    d.line([(20, 25), (100, 25), (55, 140)], fill=0, width=12)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def app(tiny_models_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_starts_on_the_shipped_default_model(monkeypatch):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox[0].value == "default.pt"
    assert not [s for s in at.slider if s.label.startswith("z")]  # the studio's latent sliders run in the browser
    labels = [m.label for m in at.sidebar.metric]
    assert any("NLL" in label for label in labels) and "active units" in labels
    assert all(m.value != "–" for m in at.sidebar.metric)  # every fact present for the shipped model
    # It opens on a real digit (test digit #0, a 7), not on the blur at z = 0.
    assert code_caption(at).startswith("Code from **test digit #0**: z = [") and "a 7 (test #0)" in code_caption(at)
    assert at.session_state[state.SELECTED_KEY] == 0 and any(v != 0.0 for v in code(at))


def test_the_studio_gets_the_payload_and_the_view(app):
    parts = studio_elements(app)
    header, arrays = read_payload(parts["studio_model"])
    view = parts["studio"]
    assert view["model"] == header["id"] and len(view["code"]) == header["latent_dim"] == 8
    assert arrays["mu"].shape == (header["arrays"]["mu"]["shape"][0], 8)
    assert view["code"] == list(code(app)) and view["projection"] == "t-SNE" and view["limit"] == 4.0 and view["step"] == 0.05
    assert sorted(view["order"]) == list(range(8))


def test_payloads_the_page_holds_are_left_out_until_it_says_it_lost_them(app):
    from app import studio

    model_id = studio_elements(app)["studio"]["model"]
    assert studio.PagePayloads.of({"models": [model_id], "decoders": [model_id]}).models == {model_id}
    app.session_state[studio.HAVE_KEY] = studio.PagePayloads.of({"models": [model_id], "decoders": [model_id]})
    app.run()  # what the first-frame signal's callback stores, then a full run
    parts = studio_elements(app)
    assert not app.exception and "studio_model" not in parts and parts["studio"]["held"] == [model_id]
    app.session_state[studio.HAVE_KEY] = studio.PagePayloads(frozenset({"another model"}))
    app.run()  # a page that holds another model's payload (a switch): this one is sent
    assert studio_elements(app)["studio"]["held"] == [] and "studio_model" in studio_elements(app)
    app.session_state[studio.HAVE_KEY] = studio.PagePayloads()  # what the studio's "need" callback stores
    app.session_state[studio.NEED_KEY] = True
    app.run()
    assert "studio_model" in studio_elements(app) and studio_elements(app)["studio"]["held"] == []
    assert studio.NEED_KEY not in app.session_state  # ... taken once


def test_what_the_studio_says_it_holds_later_is_taken_unless_the_page_lost_a_payload():
    from app import studio

    session: dict = {}
    studio.take_have(session, {"models": ["a", "b"], "decoders": ["a", "c"]})  # a model opened after "ready"
    assert session[studio.HAVE_KEY] == studio.PagePayloads(frozenset({"a", "b"}), frozenset({"a", "c"}))
    studio.take_have(session, "not a list")  # a malformed value holds nothing: everything is sent
    assert session[studio.HAVE_KEY] == studio.PagePayloads()
    session[studio.LOST_KEY] = True  # what "need" stores: from now on every payload is sent
    studio.take_have(session, {"models": ["a"], "decoders": []})
    assert session[studio.HAVE_KEY] == studio.PagePayloads()


@pytest.mark.parametrize("value", [None, True, "ids", ["a"], {"models": "abc"}, {"models": [1, None, "x" * 65]},
                                   {"models": ["a"] * 65}, {"decoders": [["nested"]]}])
def test_a_signal_names_payloads_only_as_a_short_list_of_short_strings(value):
    from app import studio

    held = studio.PagePayloads.of(value)
    assert held.models == frozenset() and held.decoders == frozenset()


def test_the_app_computes_with_one_blas_thread(app):
    """A class's sessions already run side by side: OpenBLAS's second thread only spun (docs/hosting.md)."""
    import threadpoolctl

    openblas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    assert openblas and all(i["num_threads"] == 1 for i in openblas)


def test_the_map_waits_for_the_first_rerun(app):
    """The first run holds the 10k-point map back (the studio's first digit comes first); the
    studio's ready signal, or any interaction, reruns the page with it."""
    def maps() -> list[str]:
        return [k for c in app.get("plotly_chart") if (k := c.proto.id.rsplit("-", 1)[-1]) == "latent_map"]

    assert not maps() and any("comes as soon as the studio" in i.value for i in app.info)
    app.run()
    assert maps() == ["latent_map"]


def test_a_code_in_state_is_what_the_page_shows(app):
    before = nearest_image_url(app)
    state.set_code(app.session_state, [3.0, -2.0, 0, 0, 0, 0, 0, 0], "a test")
    app.run()
    assert not app.exception
    assert code_caption(app).startswith("Code from **a test**: z = [+3.00, -2.00, +0.00")
    assert nearest_image_url(app) != before  # other neighbours for another code
    assert studio_elements(app)["studio"]["code"][:2] == [3.0, -2.0]  # the studio jumps to it
    assert app.query_params["z"] == "3,-2,0,0,0,0,0,0"  # and the URL follows


def test_a_release_changes_the_code_but_not_the_studios_input(app):
    view = studio_elements(app)["studio"]
    assert state.take_release(app.session_state, {"z": [1.5, 0, 0, 0, 0, 0, 0, 0]}, 8)
    app.run()
    assert not app.exception and code(app)[0] == 1.5
    assert code_caption(app).startswith("Code from **sliders**: z = [+1.50")
    assert studio_elements(app)["studio"] == view  # same element: Streamlit does not resend it


def test_buttons(app):
    app.button(key="btn_prior").click().run()
    prior = code(app)
    assert any(v != 0.0 for v in prior) and all(-4 <= v <= 4 for v in prior)
    assert "Code from **a prior draw**" in code_caption(app)
    app.button(key="btn_reset").click().run()
    assert code(app) == (0.0,) * 8
    app.selectbox(key="class_digit").set_value(3).run()
    app.button(key="btn_class").click().run()
    assert not app.exception and any(v != 0.0 for v in code(app)) and "a random 3" in code_caption(app)


def test_code_survives_other_interactions(app):
    state.set_code(app.session_state, [0, 0, 1.5, 0, 0, 0, 0, 0], "a test")
    app.run()
    app.segmented_control(key="projection").set_value("PCA").run()
    assert code(app)[2] == 1.5 and studio_elements(app)["studio"]["projection"] == "PCA"
    app.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    assert code(app)[2] == 1.5  # an upload is shown, not loaded, until asked
    assert app.query_params["map"] == "pca"


def test_upload_png_shows_reconstruction_and_loads_the_code(app):
    app.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    captions = [c for img in app.image for c in img.captions]
    assert "reconstruction from mu" in captions and "normalised like MNIST (28×28)" in captions
    assert any(c.startswith("nearest test digits to your upload") for c in captions)
    assert {"−ELBO (nats)", "reconstruction", "KL to prior"} <= {m.label for m in app.metric}
    app.button(key="btn_load_upload").click().run()
    assert any(v != 0.0 for v in code(app)) and "Code from **your upload**" in code_caption(app)
    assert "your upload" in app.radio(key="noise_source").options


@pytest.mark.parametrize("name,data", [("garbage.png", b"this is not an image at all"),
                                       ("empty.png", b""),
                                       ("blank.png", None)])
def test_bad_upload_shows_message_and_app_keeps_working(app, name, data):
    if data is None:
        buf = io.BytesIO()
        Image.new("L", (64, 64), 255).save(buf, "PNG")
        data = buf.getvalue()
    app.file_uploader(key="upload").set_value((name, data, "image/png")).run()
    assert not app.exception
    assert len(app.error) == 1 and name in app.error[0].value.replace("\\", "")  # shown as text: Markdown escaped
    app.button(key="btn_prior").click().run()  # the rest of the app keeps working
    assert not app.exception and any(v != 0.0 for v in code(app))


def test_real_sample_photo_upload(app):
    photo = ROOT / "tests" / "assets" / "digit_photo.jpg"
    app.file_uploader(key="upload").set_value((photo.name, photo.read_bytes(), "image/jpeg")).run()
    assert not app.exception and not app.error


def test_noise_panel_after_selecting_a_test_digit(app):
    # A map click cannot be simulated by AppTest; its callback is tested in test_explorer.py. Here
    # we set what the callback sets and check the panels that depend on it render.
    app.session_state["selected_index"] = 5
    app.run()
    assert not app.exception
    captions = [c for img in app.image for c in img.captions]
    assert any(c.startswith("test #5") for c in captions) and any("decodes of z = mu + sigma" in c for c in captions)


def test_switching_to_a_model_with_a_smaller_atlas_drops_an_out_of_range_selection(app):
    app.session_state["selected_index"] = 10_000  # as if clicked on a 10k-point atlas
    app.run()
    assert not app.exception and "selected_index" not in app.session_state


def test_a_model_that_fails_to_load_shows_one_message_and_is_not_rehashed_on_reruns(tmp_path, tiny_models_dir, monkeypatch,
                                                                                     caplog):
    import shutil

    from explorer import bundle

    for f in tiny_models_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    ckpt = tmp_path / "default.pt"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")  # the atlas now belongs to another version of the file
    hashed: list[str] = []
    real_sha256 = bundle.file_sha256
    monkeypatch.setattr(bundle, "file_sha256", lambda p: hashed.append(str(p)) or real_sha256(p))
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and len(at.error) == 1
    shown = at.error[0].value  # the visitor reads what is wrong, never a server path or a command
    assert "belongs to another version of the model" in shown
    assert str(tmp_path) not in shown and "python -m" not in shown and ".npz" not in shown
    logged = " ".join(r.getMessage() for r in caplog.records)  # the server's log has the file and the fix
    assert f"python -m training.export {ckpt}" in logged and "made for another version of default.pt" in logged
    at.run()
    at.run()
    assert not at.exception and len(at.error) == 1
    assert len(hashed) == 1  # the failure is cached with the file's version, not recomputed per rerun
    ckpt.write_bytes(ckpt.read_bytes()[:-1])  # put the right bytes back: a new mtime, so it is loaded again
    at.run()
    assert not at.exception and not at.error and code_caption(at).startswith("Code from")


# --- links --------------------------------------------------------------------------------------

def linked(tiny_models_dir, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_restores_model_code_map_and_digit(tmp_path, tiny_models_dir, monkeypatch):
    import shutil

    for stem in ("default", "other"):  # two models to choose from (the same weights under two names)
        shutil.copy(tiny_models_dir / "default.pt", tmp_path / f"{stem}.pt")
        shutil.copy(tiny_models_dir / "default.atlas.npz", tmp_path / f"{stem}.atlas.npz")
    at = linked(tmp_path, monkeypatch, model="other", z="0.5,-1,0,0,0,0,0,2.25", map="pca", digit="7")
    assert at.sidebar.selectbox[0].value == "other.pt" and not at.warning
    assert code(at) == (0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.25) and "Code from **the link**" in code_caption(at)
    assert at.session_state["projection"] == "PCA" and at.session_state[state.SELECTED_KEY] == 7
    assert {k: at.query_params[k] for k in ("model", "z", "map", "digit")} == {
        "model": "other", "z": "0.5,-1,0,0,0,0,0,2.25", "map": "pca", "digit": "7"}
    at.button(key="btn_reset").click().run()
    assert at.query_params["z"] == "0,0,0,0,0,0,0,0"  # the URL follows the state


@pytest.mark.parametrize("params,expected", [
    ({"model": "nope"}, "“nope” is not in the models folder"),
    ({"z": "1,2"}, "has 2 numbers, this model needs 8"),
    ({"z": "nan,0,0,0,0,0,0,0"}, "NaN or infinite"),
    ({"z": "9,0,0,0,0,0,0,0"}, "clipped"),
    ({"z": "a,b,c,d,e,f,g,h"}, "not a list of numbers"),
    ({"map": "umap"}, "“umap” is not one of"),
    ({"digit": "99999999"}, "none selected"),
])
def test_a_bad_link_falls_back_with_one_notice(tiny_models_dir, monkeypatch, params, expected):
    at = linked(tiny_models_dir, monkeypatch, **params)
    assert not at.error and len(at.warning) == 1 and expected in at.warning[0].value
    assert all(-4 <= v <= 4 for v in code(at))
    at.button(key="btn_reset").click().run()
    assert not at.warning  # a notice is said once, not on every rerun


# --- one truth: test digits by their MNIST index, codes across models ----------------------------

def subset_models(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """A models folder with the tiny default and "sub": the same checkpoint with an atlas of every
    third test digit (as the beta sweep's keep a subset), so its row r is test digit 3r."""
    import dataclasses
    import shutil

    from common.atlas_format import read_atlas_file, save_atlas

    for name in ("default.pt", "default.atlas.npz"):
        shutil.copy(tiny_models_dir / name, tmp_path / name)
    shutil.copy(tiny_models_dir / "default.pt", tmp_path / "sub.pt")
    full = read_atlas_file(tiny_models_dir / "default.atlas.npz")
    rows = np.arange(0, full.size, 3)
    per_row = ("mu", "logvar", "labels", "images", "pca", "tsne")
    sub = dataclasses.replace(full, **{k: getattr(full, k)[rows] for k in per_row},
                              test_index=rows.astype(np.int32), dynamics=None)
    save_atlas(tmp_path / "sub.atlas.npz", sub)
    return tmp_path


def test_a_link_to_a_subset_models_digit_selects_that_test_digit(tmp_path, tiny_models_dir, monkeypatch):
    from common.atlas_format import load_atlas

    folder = subset_models(tmp_path, tiny_models_dir)
    sub = load_atlas(folder / "sub.atlas.npz")
    at = linked(folder, monkeypatch, model="sub", digit="30")  # row 10
    at.run()  # the map comes on the second run
    assert not at.warning and at.session_state[state.SELECTED_KEY] == 30
    assert code(at) == state.snap(sub.mu[10]) and "Code from **test digit #30**" in code_caption(at)
    nearest = int(np.argmin(((sub.mu - np.array(code(at))) ** 2).sum(1)))  # the snapped code's nearest row
    assert f"{state.a_digit(int(sub.labels[nearest]))} (test #{3 * nearest})," in code_caption(at)  # named by its MNIST index
    captions = [c for img in at.image for c in img.captions]
    assert f"test #30 ({state.a_digit(int(sub.labels[10]))})" in captions
    assert at.query_params["digit"] == "30"
    # the map's points carry MNIST indices (what its hover says and a click reads)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    custom = sorted(int(v) for t in spec["data"] if t.get("customdata") is not None for v in _plotly_array(t["customdata"]))
    assert custom == list(range(0, 3 * sub.size, 3))


def test_a_link_to_a_digit_the_subset_atlas_lacks_gets_a_notice(tmp_path, tiny_models_dir, monkeypatch):
    at = linked(subset_models(tmp_path, tiny_models_dir), monkeypatch, model="sub", digit="31")
    from app.text import visitor_text  # notices are shown as text (Markdown escaped)

    assert len(at.warning) == 1 and visitor_text("test digit #31 is not among the 100 test digits") in at.warning[0].value
    assert at.session_state[state.SELECTED_KEY] == 0  # the session opens on its start digit instead


def _switch(at: AppTest, name: str) -> AppTest:
    return at.sidebar.selectbox(key="model_name").select(name).run()


def test_a_model_switch_leaves_no_false_label(tmp_path, tiny_models_dir, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, str(subset_models(tmp_path, tiny_models_dir)))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.run()
    at.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    at.button(key="btn_load_upload").click().run()
    assert "Code from **your upload**" in code_caption(at)
    _switch(at, "sub.pt")  # the upload is encoded again by the new model: still truly "your upload"
    assert not at.exception and "Code from **your upload**" in code_caption(at) and "carried" not in code_caption(at)
    assert at.session_state[state.CODE_KEY].model == "sub"
    state.take_release(at.session_state, {"z": [0.5] * 8}, 8)  # the studio's sliders
    at.run()
    _switch(at, "default.pt")  # sliders' numbers mean nothing special on another model: said so
    assert code(at) == (0.5,) * 8 and "Code from **sliders, carried over unchanged from sub**" in code_caption(at)
    _switch(at, "sub.pt")
    assert "Code from **sliders**:" in code_caption(at)  # back where they were made


def test_a_selected_digit_the_new_atlas_lacks_is_dropped_and_its_code_carried(tmp_path, tiny_models_dir, monkeypatch):
    from common.atlas_format import load_atlas

    folder = subset_models(tmp_path, tiny_models_dir)
    at = linked(folder, monkeypatch, digit="31")  # on default, which holds every test digit
    assert "Code from **test digit #31**" in code_caption(at)
    _switch(at, "sub.pt")
    assert state.SELECTED_KEY not in at.session_state
    assert code(at) == state.snap(load_atlas(folder / "default.atlas.npz").mu[31])
    assert "Code from **test digit #31, carried over unchanged from default**" in code_caption(at)


def test_the_first_digit_and_plain_words(app):
    picker = app.selectbox(key="class_digit")
    assert picker.label == "Digit" and picker.proto.label_visibility.value == 0  # visible (VISIBLE = 0)
    helps = {m.label: m.help for m in app.sidebar.metric}
    assert helps["active units"].startswith("How many of the code's numbers") and "Cov_x(E_q[z_u]) > 0.01" in helps["active units"]
    assert "black or white at random" in helps["test −ELBO"] and "dynamically binarised" in helps["test −ELBO"]


def test_the_noise_can_be_scaled_until_the_digit_dissolves(app):
    app.run()  # the start digit is selected: the noise panel shows it

    def grid() -> tuple[str, str]:
        img = next(i for i in app.image if any("decodes of z = mu" in c for c in i.captions))
        return img.captions[0], img.value[0]

    caption1, url1 = grid()
    app.select_slider(key="noise_scale").set_value(5).run()
    caption5, url5 = grid()
    assert "mu + sigma · eps" in caption1 and "mu + 5 × sigma · eps" in caption5 and url1 != url5


def test_the_posterior_chart_orders_dimensions_as_the_studio(app):
    """mu ± sigma of an upload lists z by KL, largest first, as the studio's sliders do."""
    from explorer import studio as studio_view

    app.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    spec = json.loads(next(c for c in app.get("plotly_chart") if "posterior" in c.proto.id).proto.spec)
    view = studio_elements(app)["studio"]
    order = studio_view.kl_order(view["kl"], view["active"])
    assert [y for t in spec["data"] for y in t["y"]] == [f"z{d}" for d in order] == [f"z{d}" for d in view["order"]]
    assert order != sorted(order)  # the tiny model's KL order is not z0..z7, so this tells the two apart


def _plotly_array(value: object) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype": ..., "bdata": base64}."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)
