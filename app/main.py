"""The app's entry: page config, then st.navigation over the pages: the explorer, the tug of war and the ladder from autoencoder to VAE."""

from __future__ import annotations

import streamlit as st

from app import explorer_page, ladder_page, native_threads, streamlit_guard, tug_page


# On a phone (390 px) an image given a fixed pixel width (st.image(width=850), the interpolation strip)
# kept that width and pushed the main block to scrollWidth 866: sideways scrolling. Every picture
# shrinks to its column instead, keeping its aspect (pixels stay crisp: image-rendering is set by the pages).
PHONE_CSS = """<style>
[data-testid='stImageContainer'] { max-width: 100%; }
[data-testid='stImageContainer'] img { max-width: 100%; height: auto; }
</style>"""


# Touch: a swipe over a chart should scroll the page unless the learner chose to pan (figures say so
# with layout.meta.page_scrolls and dragmode False). Plotly only lets a touch through when its
# dragmode is false, but Streamlit replaces a false dragmode by "pan" on every chart that reports
# selections (its PlotlyChart component, 1.67), so the big map and the rate-distortion plot captured
# every swipe. This puts the figure's own choice back after each plot: a tap still picks a point
# (plotly emits the click on touchend), a swipe scrolls. Plain JS in the page, no network.
TOUCH_SCROLL_JS = """<script>
(() => {
  if (window.__vaePageScrolls) return;
  window.__vaePageScrolls = true;
  const release = gd => {
    const meta = gd.layout && gd.layout.meta;
    if (meta && meta.page_scrolls && gd._fullLayout && gd._fullLayout.dragmode !== false) gd._fullLayout.dragmode = false;
  };
  const hook = gd => {
    if (gd.__vaeHooked || typeof gd.on !== 'function') return;
    gd.__vaeHooked = true;
    gd.on('plotly_afterplot', () => release(gd));
    release(gd);
  };
  let queued = false;
  const scan = () => { queued = false; document.querySelectorAll('.js-plotly-plot').forEach(hook); };
  new MutationObserver(() => { if (!queued) { queued = true; requestAnimationFrame(scan); } })
    .observe(document.body, {childList: true, subtree: true});
  scan();
})();
</script>"""


def run() -> None:
    """What `streamlit run streamlit_app.py` executes on every rerun."""
    streamlit_guard.install()  # before any component value of the next rerun is parsed (cheap, idempotent)
    native_threads.limit_blas_threads()  # once per process: many sessions, one BLAS thread each
    st.set_page_config(page_title="VAE latent explorer", page_icon="🔢", layout="wide")
    st.html(PHONE_CSS)
    st.html(TOUCH_SCROLL_JS, unsafe_allow_javascript=True)
    pages = [st.Page(explorer_page.render, title="Explorer", icon="🔢", url_path="explorer", default=True),
             st.Page(tug_page.render, title="The tug of war", icon="⚖️", url_path="tug-of-war"),
             st.Page(ladder_page.render, title="From autoencoder to VAE", icon="🪜", url_path="ladder")]
    st.navigation(pages).run()
