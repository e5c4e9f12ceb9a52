"""The real Streamlit app driven by AppTest: start-up, sliders, buttons, upload, bad upload.

Most tests run on a tiny model in a temp folder ($VAE_EXPLORER_MODELS); one starts on the shipped
default model exactly as `streamlit run streamlit_app.py` does.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from explorer.bundle import MODELS_DIR_ENV

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 120  # the first run imports torch and plotly; CI machines are slow


def decoded_image_url(at: AppTest) -> str:
    """The media URL of the decoded digit; Streamlit names media by a hash of their bytes."""
    for img in at.image:
        if "decoded pixel means" in img.captions:
            return img.value[0]
    raise AssertionError(f"no decoded image among {[i.captions for i in at.image]}")


def slider_values(at: AppTest) -> list[float]:
    return [s.value for s in at.slider]


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
    assert len(at.slider) == 8
    labels = [m.label for m in at.sidebar.metric]
    assert any("NLL" in label for label in labels) and "active units" in labels
    assert all(m.value != "–" for m in at.sidebar.metric)  # every fact present for the shipped model


def test_eight_sliders_labelled_with_kl(app):
    assert len(app.slider) == 8
    assert all(s.label.startswith(f"z{i} · KL ") for i, s in enumerate(app.slider))
    assert all(s.min == -4.0 and s.max == 4.0 for s in app.slider)


def test_moving_a_slider_changes_the_image(app):
    before = decoded_image_url(app)
    app.slider(key="z0").set_value(3.0).run()
    assert not app.exception
    after = decoded_image_url(app)
    assert after != before
    app.slider(key="z0").set_value(0.0).run()
    assert decoded_image_url(app) == before  # same code, same pixels


def test_buttons(app):
    app.button(key="btn_prior").click().run()
    prior = slider_values(app)
    assert any(v != 0.0 for v in prior) and all(-4 <= v <= 4 for v in prior)
    app.button(key="btn_reset").click().run()
    assert slider_values(app) == [0.0] * 8
    app.selectbox(key="class_digit").set_value(3).run()
    app.button(key="btn_class").click().run()
    assert not app.exception and any(v != 0.0 for v in slider_values(app))


def test_slider_state_survives_other_interactions(app):
    app.slider(key="z2").set_value(1.5).run()
    app.segmented_control(key="projection").set_value("PCA").run()
    assert app.slider(key="z2").value == 1.5
    app.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    assert app.slider(key="z2").value == 1.5
    assert any("PCA" in c for img in app.image for c in img.captions)  # locator follows the toggle


def test_upload_png_shows_reconstruction_and_loads_sliders(app):
    app.file_uploader(key="upload").set_value(("seven.png", png_of_seven(), "image/png")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    captions = [c for img in app.image for c in img.captions]
    assert "reconstruction from mu" in captions and "normalised like MNIST (28×28)" in captions
    assert any(c.startswith("nearest test digits") for c in captions)
    assert {"−ELBO", "reconstruction", "KL to N(0, I)"} <= {m.label for m in app.metric}
    app.button(key="btn_load_upload").click().run()
    assert any(v != 0.0 for v in slider_values(app))
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
    assert len(app.error) == 1 and name in app.error[0].value
    before = decoded_image_url(app)
    app.slider(key="z1").set_value(-2.0).run()
    assert not app.exception and decoded_image_url(app) != before


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


def test_a_model_that_fails_to_load_shows_one_message_and_is_not_rehashed_on_reruns(tmp_path, tiny_models_dir, monkeypatch):
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
    assert "made for another version of default.pt" in at.error[0].value and "python -m training.export" in at.error[0].value
    at.run()
    at.run()
    assert not at.exception and len(at.error) == 1
    assert len(hashed) == 1  # the failure is cached with the file's version, not recomputed per rerun
    ckpt.write_bytes(ckpt.read_bytes()[:-1])  # put the right bytes back: a new mtime, so it is loaded again
    at.run()
    assert not at.exception and not at.error and len(at.slider) == 8
