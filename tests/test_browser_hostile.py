"""In real Chromium: what a visitor sends shows as text, and the browser fetches nothing it names.

The AppTest tests (tests/test_hostile.py) check the Markdown the server sends; this checks what the
browser makes of it: in the link's notice and the upload's error there is no link, no image and no
coloured text, the text reads as the visitor sent it, and no request goes to the address the
Markdown named (a port on 127.0.0.1 where nothing listens).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.test_browser import (  # noqa: F401 - fixtures: browser, context, server, models_dir
    STEP_TIMEOUT,
    browser,
    context,
    expect,
    models_dir,
    open_page,
    server,
    wait_rendered,
)

pytestmark = pytest.mark.browser

BAIT = "http://127.0.0.1:9"  # the discard port: nothing answers; any request to it is the failure
MODEL = f"![t]({BAIT}/p.png) [Log in]({BAIT}/) :red[x]"
MAP = f"[x]({BAIT}):red[y]"[:20]
NAME = f"![t]({BAIT}_p.png) [Log in]({BAIT}) :red[x] :smile: www.example.com.png"
JOINER = "\u2060"  # app.text.JOINER: invisible, so not in what a person reads


def _alert_inert(alert) -> str:
    """The alert's text, after checking it holds no link, image or coloured span."""
    assert alert.locator("a").count() == 0 and alert.locator("img").count() == 0, alert.inner_html()
    assert alert.locator("span[class*='color'], span[style*='color']").count() == 0
    assert "😄" not in alert.inner_text()  # no emoji shortcode applied
    return alert.inner_text().replace(JOINER, "")


def test_markdown_from_a_link_and_a_file_name_is_shown_as_text(context, server):
    requests: list[str] = []
    pg = open_page(context, f"{server.url}/?{urlencode({'model': MODEL, 'map': MAP})}")
    pg.on("request", lambda r: requests.append(r.url))
    try:
        wait_rendered(pg)
        warnings = pg.locator("[data-testid='stAlertContentWarning']")
        expect(warnings).to_have_count(2, timeout=STEP_TIMEOUT)
        text = " ".join(_alert_inert(warnings.nth(i)) for i in range(2))
        assert MODEL[:40] in text and MAP in text  # the visitor's characters, as sent
        pg.set_input_files("[data-testid='stFileUploader'] input[type='file']",
                           files=[{"name": NAME, "mimeType": "image/png", "buffer": b"not an image"}])
        error = pg.locator("[data-testid='stAlertContentError']")
        expect(error).to_have_count(1, timeout=STEP_TIMEOUT)
        assert NAME[:79] in _alert_inert(error)  # a name is shown up to 80 characters
        assert error.locator("strong").count() == 1  # the app's own bold around the name still applies
    finally:
        pg.close()
    assert not [u for u in requests if u.startswith(BAIT)], "the browser fetched what a visitor's Markdown named"
