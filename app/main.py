"""The app's entry: page config, then st.navigation over the pages: the explorer and the tug of war."""

from __future__ import annotations

import streamlit as st

from app import explorer_page, tug_page


# On a phone (390 px) an image given a fixed pixel width (st.image(width=850), the interpolation strip)
# kept that width and pushed the main block to scrollWidth 866: sideways scrolling. Every picture
# shrinks to its column instead, keeping its aspect (pixels stay crisp: image-rendering is set by the pages).
PHONE_CSS = """<style>
[data-testid='stImageContainer'] { max-width: 100%; }
[data-testid='stImageContainer'] img { max-width: 100%; height: auto; }
</style>"""


def run() -> None:
    """What `streamlit run streamlit_app.py` executes on every rerun."""
    st.set_page_config(page_title="VAE latent explorer", page_icon="🔢", layout="wide")
    st.html(PHONE_CSS)
    pages = [st.Page(explorer_page.render, title="Explorer", icon="🔢", url_path="explorer", default=True),
             st.Page(tug_page.render, title="The tug of war", icon="⚖️", url_path="tug-of-war")]
    st.navigation(pages).run()
