"""The URL holds the view: read it once per session (explorer.links), then keep it in step with the state.

A link is applied on a session's first run only, so a URL edited by hand later does not fight the
studio; after that the query string follows the state on every rerun that changes it. A code file
(JSON, explorer.exports) loaded later is applied the same way: `queue_view` stores its view as the
query values a link would carry, and the next run applies them as if the page had been opened with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import streamlit as st

from explorer import bundle, links, state

LINK_READ_KEY = "_link_read"  # set once the session's first link has been applied
QUEUED_KEY = "_queued_view"  # a code file's view, applied on the next run like a link


@dataclass(frozen=True)
class QueuedView:
    """A view to apply on the next run: query values as a link holds them, who asked, and the
    checkpoint digest it was made with ("" for none)."""

    params: dict[str, str]
    source: str
    sha256: str = ""


def queue_view(params: dict[str, str], source: str, sha256: str = "") -> None:
    """Apply `params` (links.encode's values) on the next run, as a link would be on a first run."""
    st.session_state[QUEUED_KEY] = QueuedView(dict(params), source, sha256)
    st.session_state[LINK_READ_KEY] = False


def _queued() -> QueuedView | None:
    q = st.session_state.get(QUEUED_KEY)
    return q if isinstance(q, QueuedView) else None


def _params() -> dict[str, str]:
    if (q := _queued()) is not None:
        return q.params
    return {k: st.query_params.get(k, "") for k in st.query_params.keys()}


def apply_link_model(stems: Sequence[str], options: Sequence[str]) -> tuple[str, ...]:
    """Before the model picker is drawn: select the link's model (a bundle.checkpoint_name, as
    `ExplorerModel.name`; `options[i]` is the picker's entry for `stems[i]`); notices for a stale one."""
    if st.session_state.get(LINK_READ_KEY):
        return ()
    name, notices = links.read_model(_params(), stems)
    if _queued() is not None:
        notices = ()  # apply_link_view says it, in the code file's words
    if name is not None:
        st.session_state["model_name"] = options[list(stems).index(name)]
    return notices


def apply_link_view(m: bundle.ExplorerModel) -> tuple[str, ...]:
    """Once the model is loaded: apply the link's code, map and test digit; notices for what was dropped."""
    if st.session_state.get(LINK_READ_KEY):
        return ()
    st.session_state[LINK_READ_KEY] = True
    queued = st.session_state.pop(QUEUED_KEY, None)
    if not isinstance(queued, QueuedView):
        queued = None
    params = queued.params if queued else _params()
    source = queued.source if queued else "the link"
    a = m.atlas
    held = None if a.test_index is None else (lambda n: state.digit_row(a.test_index, a.size, n) is not None)
    view = links.read_view(params, m.latent_dim, a.size, "code file" if queued else "link", held)
    notices = list(view.notices)
    if queued and links.MODEL in params and params[links.MODEL] != m.name:
        notices.append(f"{source.capitalize()} was made with model “{params[links.MODEL][:60]}”, which is not in the "
                       f"models folder; its code is shown on {m.name}.")
    elif queued and queued.sha256 and queued.sha256 != m.sha256:
        notices.append(f"{source.capitalize()} was made with another version of {m.name} (checkpoint "
                       f"{queued.sha256[:12]}…, this one {m.sha256[:12]}…); its code is shown as it is.")
    if view.projection is not None:
        st.session_state["projection"] = view.projection
    if view.digit is not None:
        state.select_digit(st.session_state, view.digit, a.mu, a.test_index)  # also loads its code ...
    if view.code is not None:
        state.set_code(st.session_state, view.code, source)  # ... unless the link has its own
    elif view.digit is None and not isinstance(st.session_state.get(state.CODE_KEY), state.CodeState):
        start_digit(m)  # a session's first code: a real digit, not the blur at z = 0
    return tuple(notices)


def start_digit(m: bundle.ExplorerModel) -> None:
    """Open on test digit START_DIGIT (a clear 7), or on the atlas's first digit if it lacks that one."""
    a = m.atlas
    number = state.START_DIGIT if state.digit_row(a.test_index, a.size, state.START_DIGIT) is not None \
        else state.digit_number(a.test_index, 0)
    state.select_digit(st.session_state, number, a.mu, a.test_index)


def sync_url(m: bundle.ExplorerModel) -> None:
    """Write the current view to the query string if it changed (a write costs a message)."""
    cs = state.current(st.session_state, m.latent_dim)
    wanted = links.encode(m.name, cs.z, st.session_state.get("projection") or "t-SNE",
                          st.session_state.get(state.SELECTED_KEY))
    if _params() != wanted:
        st.query_params.from_dict(wanted)
