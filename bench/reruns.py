"""A slider move: what the server reruns (the slider fragment), the whole-script rerun, and their parts."""

from __future__ import annotations

import numpy as np

from bench.harness import APP
from bench.timing import APPTEST_TIMEOUT, in_script_thread, median_seconds, random_codes
from explorer import bundle, codes, figures, projection


def apptest(source_file=None, source: str | None = None, function=None, **kwargs):  # noqa: ANN001, ANN201
    """An AppTest of the app (default), of a script's text, or of a function (AppTest.from_function)."""
    from streamlit.testing.v1 import AppTest

    if function is not None:
        return AppTest.from_function(function, kwargs=kwargs, default_timeout=APPTEST_TIMEOUT)
    if source is not None:
        return AppTest.from_string(source, default_timeout=APPTEST_TIMEOUT)
    return AppTest.from_file(str(source_file or APP), default_timeout=APPTEST_TIMEOUT)


def run_clean(at) -> None:  # noqa: ANN001
    at.run()
    if at.exception:
        raise RuntimeError(f"app raised: {[e.value for e in at.exception]}")


def slider_values(repeats: int, seed: int = 0) -> list[float]:
    """Slider positions in the app's 0.05 grid, each different from the one before."""
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < repeats:
        v = round(float(rng.integers(-60, 61)) * 0.05, 2)
        if not values or v != values[-1]:
            values.append(v)
    return values


def warm_slider_rerun(at, repeats: int, warmup: int = 2) -> float:  # noqa: ANN001
    """Median seconds of at.run() after setting slider z0 to a new value; `at` has run once."""
    values = slider_values(repeats + warmup)

    def move(i: int) -> None:
        at.slider(key="z0").set_value(values[i])
        run_clean(at)

    for i in range(warmup):
        move(i)
    return median_seconds(lambda i: move(warmup + i), repeats)


def slider_rerun_apptest(repeats: int) -> float:
    """Whole app in AppTest (models from $VAE_EXPLORER_MODELS): median seconds of the rerun after one
    slider change, warmed up. AppTest reruns the whole script, not just the fragment."""
    at = apptest()
    run_clean(at)
    return warm_slider_rerun(at, repeats)


def _fragment_only(projection_name: str) -> None:
    """An AppTest script (run by AppTest.from_function, so self-contained): the app's real slider
    fragment on the first model, and nothing else of the page."""
    import streamlit as st

    from app import models
    from app.explorer_page import sliders_ui
    from explorer import bundle, state

    path = bundle.list_checkpoints(bundle.models_dir())[0]
    m = models.load_model_or_error(str(path), models.file_version(path))
    state.init_sliders(st.session_state, m.latent_dim)
    st.session_state.setdefault("projection", projection_name)
    sliders_ui(m)


def fragment_rerun_apptest(repeats: int, projection_name: str = "PCA") -> float:
    """Median seconds of an AppTest rerun, after one slider change, of a script that runs only the
    app's `sliders_ui` fragment: the fragment body plus its Streamlit elements."""
    at = apptest(function=_fragment_only, projection_name=projection_name)
    run_clean(at)
    return warm_slider_rerun(at, repeats)


def apptest_overhead(repeats: int) -> float:
    """Median seconds of an AppTest rerun of a one-slider script: the harness's own cost per run."""
    at = apptest(source="import streamlit as st\nst.slider('a', -4.0, 4.0, key='z0')\n")
    run_clean(at)
    return warm_slider_rerun(at, repeats)


def fragment_body(m: bundle.ExplorerModel, projection_name: str, repeats: int) -> float:
    """Median seconds of the computations `sliders_ui` does per slider move, called directly:
    decode + upscale, place on the map, locator image (no Streamlit)."""
    z = random_codes(repeats + 1, m.latent_dim, seed=1)
    coords = projection.map_coords(m.atlas, projection_name)

    def body(i: int) -> None:
        figures.upscale(codes.decode_pixels(m.model, z[i]), 8)
        xy = projection.place(z[i], m.atlas, projection_name)
        figures.locator_image(coords, m.atlas.labels, xy)

    def timed() -> float:
        body(repeats)  # warm-up
        return median_seconds(body, repeats)

    return in_script_thread(timed)


def tsne_place(m: bundle.ExplorerModel, n: int) -> float:
    """Median seconds of projection.place(z, atlas, "t-SNE") over n random codes."""
    z = random_codes(n + 1, m.latent_dim, seed=2)

    def timed() -> float:
        projection.place(z[n], m.atlas, "t-SNE")
        return median_seconds(lambda i: projection.place(z[i], m.atlas, "t-SNE"), n)

    return in_script_thread(timed)
