"""Show what a visitor sent as text, never as Markdown: `visitor_text(value)`.

Streamlit renders st.error, st.warning, st.info, st.markdown and st.caption as Markdown (GitHub
flavour plus its own extensions), so a query value such as `![t](http://host/pixel.png)` would become
an image the visitor's browser fetches, `[Log in again](http://...)` a link, `:red[...]` coloured
text, `http://...` or `www....` an automatic link, `$...$` LaTeX and `:material/...:` an icon.

Every string that comes from a visitor (query values, uploaded file names, code-file fields,
component values) and every message that carries one goes through `visitor_text` before it is put
in such an element. It backslash-escapes each character that starts a Markdown construct: a
backslash before ASCII punctuation is CommonMark's escape, so the page shows the character itself,
and the construct never forms. Whitespace runs (newlines included) become one space, so a value
cannot start a heading, list, quote or table on a line of its own. What a backslash cannot stop
(plugins that rewrite the parsed text: automatic links, emoji and icon shortcodes) is broken by an
invisible word joiner (see JOINER).
"""

from __future__ import annotations

import re

__all__ = ["visitor_text", "MARKDOWN_SPECIAL", "JOINER"]

#: The ASCII punctuation that can open a Markdown construct in Streamlit's renderer: escapes (\),
#: code (`), emphasis (* _ ~), links, images and directives ([ ] ( ) !), HTML and autolinks (< >),
#: headings (#), tables (|), LaTeX ($), colour/icon/emoji directives (:), automatic links to URLs,
#: www. and e-mail addresses (: . @), entities (&), attributes ({ }), lists and setext headings
#: (+ - =) and superscript-like extensions (^). Commas, quotes, slashes and the rest are left as
#: they are: they open nothing.
MARKDOWN_SPECIAL = "\\`*_~[]()!<>#|$:.@&{}+-=^"
_SPECIAL = re.compile("([" + re.escape(MARKDOWN_SPECIAL) + "])")
_SPACE = re.compile(r"\s+")
#: U+2060 WORD JOINER: zero width, invisible. Some of Streamlit's Markdown plugins rewrite the parsed
#: *text*, after escapes are resolved, so a backslash cannot stop them: GFM's automatic links find
#: `http://...`, `www....` and `name@host.tld` in text, and emoji and icon shortcodes (`:smile:`,
#: `:material/home:`) are replaced in text too. A joiner after every ":" and "@" and between "www"
#: and "." breaks each of those patterns (measured in Chromium: tests/test_browser_hostile.py) and
#: shows nothing.
JOINER = "\u2060"
_AUTOLINK_TRIGGERS = re.compile(r"([:@])|(?i:(www)(?=\.))")


def visitor_text(value: object, limit: int | None = None) -> str:
    """`value` (any object: its str) as Markdown that Streamlit shows as exactly that text.

    Args:
        value: the visitor's string, or a message that contains one.
        limit: at most this many characters of it are shown (then "…"); None for all.
    """
    text = _SPACE.sub(" ", str(value)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    text = _AUTOLINK_TRIGGERS.sub(lambda m: (m.group(1) or m.group(2)) + JOINER, text)
    return _SPECIAL.sub(r"\\\1", text)
