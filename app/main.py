"""The app's entry: page config, then st.navigation over the pages (one today; more will join)."""

from __future__ import annotations

import streamlit as st

from app import explorer_page


def run() -> None:
    """What `streamlit run streamlit_app.py` executes on every rerun."""
    st.set_page_config(page_title="VAE latent explorer", page_icon="🔢", layout="wide")
    pages = [st.Page(explorer_page.render, title="Explorer", icon="🔢", url_path="explorer", default=True)]
    st.navigation(pages).run()
