"""What a hostile visitor sends, shown as text; what a broken model says, without server paths.

Issue 20, parts 2 and 3. Each test puts Markdown that would render as an image, a link, coloured text,
an automatic link, LaTeX or HTML into one place a visitor controls (a query value, an uploaded file's
name, a code file's fields, the drawing pad's value) and checks the element the page shows: every
character that opens a Markdown construct is escaped, and the text, once unescaped, is what the
visitor sent. The helper is checked on its own first (app/text.py).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app import studio
from app.text import JOINER, MARKDOWN_SPECIAL, visitor_text
from explorer.bundle import MODELS_DIR_ENV
from explorer.preprocess import MAX_FILE_BYTES, UPLOAD_LIMIT_MB
from tests.test_app import APP, TIMEOUT

HOSTILE = {
    "image": "![t](http://127.0.0.1:8699/pixel.png)",
    "link": "[Session expired: log in again](http://127.0.0.1:8699/login)",
    "colour": ":red[Your session has expired]",
    "html": "<img src=http://127.0.0.1:8699/x.png onerror=alert(1)>",
    "autolink": "see www.example.com or http://127.0.0.1:8699/ or mail a@example.com",
    "emoji": ":smile: :+1: :material/home:",
    "latex, icon, code": "$x^2$ :material/warning: `rm -rf` **bold** _it_ ~~gone~~",
    "lines": "ok\n# Heading\n- item\n> quote",
}


def live(markdown: str) -> str:
    """`markdown` with each backslash escape (and the character it escapes) removed: what is left
    is what the Markdown parser may read as syntax."""
    return re.sub(r"\\.", "", markdown)


def live_specials(markdown: str) -> list[str]:
    """The characters of `markdown` that could open a Markdown construct and are not escaped."""
    return [c for c in live(markdown) if c in MARKDOWN_SPECIAL]


def unescape(markdown: str) -> str:
    """The text CommonMark shows for `markdown` made of plain text and backslash escapes (the word
    joiners visitor_text adds show as nothing)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(JOINER, "")


def assert_inert(markdown: str, sent: str, shown_chars: int | None = None) -> None:
    """`markdown` shows `sent` (its first `shown_chars`, whitespace runs as one space) as text."""
    flat = " ".join(sent.split())
    part = flat[:shown_chars] if shown_chars else flat
    assert part in unescape(markdown), markdown
    for construct in ("](", "![", ":red[", "<img", "$x"):
        assert construct not in live(markdown), f"{construct!r} live in {markdown!r}"
    # What rewrites the parsed text (escapes resolved): automatic links, emoji and icon shortcodes.
    text = re.sub(r"\\(.)", r"\1", markdown)
    for pattern in (r"https?://", r"(?i)www\.", r"@[\w-]+\.", r":[\w/+-]+:"):
        assert not re.search(pattern, text), f"{pattern} in the text of {markdown!r}"
    assert "\n" not in markdown


# --- the helper ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HOSTILE)
def test_visitor_text_escapes_every_construct_and_keeps_the_text(kind):
    sent = HOSTILE[kind]
    md = visitor_text(sent)
    assert live_specials(md) == []  # every special character escaped
    assert unescape(md) == " ".join(sent.split())  # and nothing else changed
    assert_inert(md, sent)


def test_visitor_text_shortens_and_leaves_plain_text_alone():
    assert visitor_text("default, seed and the beta sweep") == "default, seed and the beta sweep"
    assert unescape(visitor_text("x" * 500, 60)) == "x" * 59 + "…"
    assert visitor_text(None) == "None" and visitor_text(12) == "12"


# --- in the app ---------------------------------------------------------------------------------

@pytest.fixture
def models(tiny_models_dir, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))
    return tiny_models_dir


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def linked(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    return run(at)


# One value per place mixing the constructs (a place that quotes only 20 characters gets two).
MIXED = "![t](http://h/p.png) [Log in](http://h) :red[x] <img src=x> $x$"
SHORT = ("![t](http://h/p.png)", "[x](http://h):red[y]")


@pytest.mark.parametrize("param,sent,shown", [("model", MIXED, 60), ("map", SHORT[0], 20), ("map", SHORT[1], 20),
                                              ("digit", SHORT[0], 20), ("digit", SHORT[1], 20), ("z", MIXED, 0)])
def test_a_query_value_is_shown_as_text(models, param, sent, shown):
    at = linked(**{param: sent})
    assert len(at.warning) == 1  # the link's value is refused with a notice
    md = at.warning[0].value
    assert_inert(md, sent, shown) if shown else assert_inert(md, "")  # z is not quoted back
    assert live_specials(md) == []  # a notice is plain text: nothing in it is Markdown


def test_an_uploaded_file_name_is_shown_as_text(models):
    name = (MIXED + "\n# Heading").replace("/", "_") + ".png"  # a browser sends the base name only
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.file_uploader(key="upload").set_value((name, b"not an image", "image/png")).run()
    assert not at.exception and len(at.error) == 1
    md = at.error[0].value
    assert md.startswith("Cannot use **")  # the app's own bold stays; the name inside it is text
    inner = md[len("Cannot use **"):md.index("**:", len("Cannot use **"))]
    assert live_specials(inner) == []
    assert_inert(md, name[:79])


def _paste(at: AppTest, text: str) -> AppTest:
    at.run()  # the panel comes with the map, on the second run
    at.segmented_control(key="keep_view").set_value("Code (JSON)").run()
    at.text_area(key="code_paste").input(text).run()
    return at.button(key="btn_load_code").click().run()


def _code_doc(**change) -> str:
    doc = {"format": "vae-explorer-code", "version": 1, "model": "default", "checkpoint_sha256": "ab" * 32,
           "latent_dim": 8, "z": [0.0] * 8}
    doc.update(change)
    return json.dumps(doc)


def test_a_code_files_model_is_shown_as_text(models):
    at = _paste(run(AppTest.from_file(APP, default_timeout=TIMEOUT)), _code_doc(model=MIXED))
    assert not at.exception and not at.error
    notices = [w.value for w in at.warning if "not in the models folder" in w.value]
    assert len(notices) == 1, [w.value for w in at.warning]
    assert_inert(notices[0], MIXED, 60)


@pytest.mark.parametrize("field", ["projection", "digit"])
def test_a_code_files_bad_field_is_quoted_as_text(models, field):
    sent = HOSTILE["link"]
    at = _paste(run(AppTest.from_file(APP, default_timeout=TIMEOUT)), _code_doc(**{field: sent}))
    assert not at.exception and len(at.error) == 1
    md = at.error[0].value
    assert md.startswith("Cannot load the code:") and field in md
    assert_inert(md, repr(sent)[:24])  # the field is quoted (shortened) in the message


# --- the drawing pad: a stroke is the pad's own picture or nothing ------------------------------

def _data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_pad_takes_its_own_canvas_and_refuses_a_big_picture_from_its_header(monkeypatch):
    own = studio.drawing_png(_data_url(Image.new("RGBA", (studio.PAD_SIZE, studio.PAD_SIZE))))
    assert own.startswith(b"\x89PNG")
    # 6320 x 6320 16-bit: 85 KB as a file, ~1 GB once converted at full size before issue 20
    big = _data_url(Image.fromarray(np.zeros((6320, 6320), np.uint16)))
    decoded: list[tuple[int, int]] = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    with pytest.raises(ValueError, match="larger than the pad"):
        studio.drawing_png(big)
    assert decoded == []  # refused from the header
    for bad in ("data:image/png;base64," + base64.b64encode(b"GIF89a" + b"\0" * 30).decode(), 12, {"x": [[[]]]}):
        with pytest.raises(ValueError):
            studio.drawing_png(bad)


# --- part 3: no server paths or library text for visitors ---------------------------------------

@pytest.fixture
def broken_models(tmp_path, tiny_models_dir, monkeypatch):
    """default (fine) and broken, whose atlas holds a pickled object array."""
    for f in tiny_models_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(tmp_path / "default.pt", tmp_path / "broken.pt")
    with np.load(tmp_path / "default.atlas.npz", allow_pickle=False) as atlas:
        arrays = dict(atlas)
    arrays["mu"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "broken.atlas.npz", **arrays)
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    return tmp_path


def assert_no_server_detail(text: str, folder) -> None:
    for leak in (str(folder), "/tmp", "python -m training", "ValueError", "allow_pickle", "Traceback"):
        assert leak not in text, f"{leak!r} shown to visitors: {text!r}"


def test_a_broken_model_picked_by_a_link_names_the_model_not_the_path(broken_models, caplog):
    with caplog.at_level(logging.WARNING, logger="app.models"):
        at = linked(model="broken")
    assert len(at.error) == 1
    md = at.error[0].value
    assert md.startswith("The model broken cannot be used: its latent atlas is damaged")
    assert_no_server_detail(md, broken_models)
    logged = caplog.text  # whoever runs the server gets the path, the library's words and the command
    assert str(broken_models / "broken.pt") in logged and "python -m training.export" in logged
    assert "not a readable .npz" in logged


def test_the_tug_page_lists_a_broken_model_without_server_detail(broken_models):
    at = run(AppTest.from_string("from app.tug_page import render\nrender()", default_timeout=TIMEOUT))
    (warning,) = [w.value for w in at.warning if w.value.startswith("broken is left out:")]
    assert "its latent atlas is damaged" in warning
    assert_no_server_detail(warning, broken_models)
    assert_no_server_detail(" ".join(e.value for e in at.error), broken_models)


def test_an_empty_models_folder_does_not_show_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert len(at.error) == 1 and "No model in the models folder" in at.error[0].value
    assert str(tmp_path) not in at.error[0].value


# --- one upload limit, one unit ------------------------------------------------------------------

def test_one_upload_limit_in_one_unit(models):
    import tomllib

    from tests.test_app import ROOT as REPO

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == UPLOAD_LIMIT_MB  # the server's limit (it counts MiB: 20 MiB > 20 MB)
    assert MAX_FILE_BYTES == UPLOAD_LIMIT_MB * 1_000_000  # the browser's unit: decimal MB
    # One websocket message (decimal MB, bounded for memory) still carries the largest drawing the pad
    # may send, as a base64 data URL, with room for the rest of a rerun's widget values.
    assert config["server"]["maxWidgetStateSize"] * 1_000_000 >= studio.MAX_DRAWING_BYTES * 4 // 3 + 500_000
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert at.file_uploader(key="upload").proto.max_upload_size_mb == UPLOAD_LIMIT_MB
    # What slips between the browser's 20 MB and the server's 20 MiB is refused in the same words.
    at.file_uploader(key="upload").set_value(("big.png", b"\x89PNG" + b"\0" * MAX_FILE_BYTES, "image/png")).run()
    assert len(at.error) == 1 and f"the limit is {UPLOAD_LIMIT_MB} MB" in unescape(at.error[0].value)


# --- a component value nested past Python's limit (app/streamlit_guard.py) -------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_streamlits_component_value_parsers_take_a_deep_value_as_no_value():
    from streamlit.components.v2.bidi_component import serialization
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.runtime.state import common

    from app import streamlit_guard

    assert streamlit_guard.install()  # Streamlit still parses component values where the guard expects
    assert serialization.deserialize_trigger_list(DEEP) is None  # setTriggerValue: no event, no callback
    assert serialization.BidiComponentSerde().deserialize(DEEP) == {}  # setStateValue: an empty state
    assert common.unpack_widget_state_value(WidgetState(id="w", json_value=DEEP)) is None
    # Values of the right shape are parsed as before.
    assert serialization.deserialize_trigger_list('[{"event": "stroke", "value": "x"}]') == [{"event": "stroke", "value": "x"}]
    assert common.unpack_widget_state_value(WidgetState(id="w", json_value='{"release": [1, 2]}')) == {"release": [1, 2]}


@pytest.fixture(scope="module")
def live_server(tiny_app_server):
    return tiny_app_server


@pytest.mark.server
@pytest.mark.parametrize("how", ["trigger", "state"])
def test_a_deep_pad_value_leaves_the_page_and_the_session_working(live_server, how):
    from bench.hostile_server import Visitor, outcome

    visitor = Visitor(live_server)
    try:
        page = "neither analysed nor refused"  # the explorer page with no upload: no error element
        assert outcome(visitor.send_json("pad", DEEP, how)) == page
        assert outcome(visitor.rerun()) == page  # and the session's next run too
    finally:
        visitor.close()
    assert live_server.proc.poll() is None


@pytest.mark.server
def test_a_message_over_the_widget_state_limit_closes_only_that_connection(live_server):
    from websockets.exceptions import ConnectionClosed

    from bench.hostile_server import Visitor, outcome

    visitor, other = Visitor(live_server), Visitor(live_server)
    try:
        with pytest.raises(ConnectionClosed):  # 2 MB is the shipped limit; 3 MB of [[],...] would be ~60 MB of lists
            visitor.send_json("pad", "[" + "[]," * 1_000_000 + "[]]", "state")
        assert outcome(other.rerun()) == "neither analysed nor refused"
    finally:
        visitor.close()
        other.close()
