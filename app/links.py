"""The URL holds the view: read it once per session (explorer.links), then keep it in step with the state.

A link is applied on a session's first run only, so a URL edited by hand later does not fight the
studio; after that the query string follows the state on every rerun that changes it.
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from explorer import bundle, links, state

LINK_READ_KEY = "_link_read"  # set once the session's first link has been applied


def _params() -> dict[str, str]:
    return {k: st.query_params.get(k, "") for k in st.query_params.keys()}


def apply_link_model(stems: Sequence[str], options: Sequence[str]) -> tuple[str, ...]:
    """Before the model picker is drawn: select the link's model (a checkpoint's stem, as
    `ExplorerModel.name`; `options[i]` is the picker's entry for `stems[i]`); notices for a stale one."""
    if st.session_state.get(LINK_READ_KEY):
        return ()
    name, notices = links.read_model(_params(), stems)
    if name is not None:
        st.session_state["model_name"] = options[list(stems).index(name)]
    return notices


def apply_link_view(m: bundle.ExplorerModel) -> tuple[str, ...]:
    """Once the model is loaded: apply the link's code, map and test digit; notices for what was dropped."""
    if st.session_state.get(LINK_READ_KEY):
        return ()
    st.session_state[LINK_READ_KEY] = True
    view = links.read_view(_params(), m.latent_dim, m.atlas.size)
    if view.projection is not None:
        st.session_state["projection"] = view.projection
    if view.digit is not None:
        state.select_digit(st.session_state, view.digit, m.atlas.mu)  # also loads its code ...
    if view.code is not None:
        state.set_code(st.session_state, view.code, "the link")  # ... unless the link has its own
    return view.notices


def sync_url(m: bundle.ExplorerModel) -> None:
    """Write the current view to the query string if it changed (a write costs a message)."""
    cs = state.current(st.session_state, m.latent_dim)
    wanted = links.encode(m.name, cs.z, st.session_state.get("projection") or "t-SNE",
                          st.session_state.get(state.SELECTED_KEY))
    if _params() != wanted:
        st.query_params.from_dict(wanted)
