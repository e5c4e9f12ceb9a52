"""The app's entry: page config, then st.navigation over the pages: the explorer, the tug of war and the ladder from autoencoder to VAE."""

from __future__ import annotations

import streamlit as st

from app import explorer_page, ladder_page, streamlit_guard, tug_page


def run() -> None:
    """What `streamlit run streamlit_app.py` executes on every rerun."""
    streamlit_guard.install()  # before any component value of the next rerun is parsed (cheap, idempotent)
    st.set_page_config(page_title="VAE latent explorer", page_icon="🔢", layout="wide")
    pages = [st.Page(explorer_page.render, title="Explorer", icon="🔢", url_path="explorer", default=True),
             st.Page(tug_page.render, title="The tug of war", icon="⚖️", url_path="tug-of-war"),
             st.Page(ladder_page.render, title="From autoencoder to VAE", icon="🪜", url_path="ladder")]
    st.navigation(pages).run()
