"""A slider release: what the server reruns (the studio's fragment), the whole-script rerun, and their parts.

The browser decodes while a slider is dragged (bench.studio measures that); on release it sends the
code once, and the server reruns the `code_ui` fragment: its summary, nearest test digits and the URL."""

from __future__ import annotations

import numpy as np

from bench.harness import APP
from bench.timing import APPTEST_TIMEOUT, in_script_thread, median_seconds, random_codes
from explorer import bundle, figures, links, projection, state, studio


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


def release_values(repeats: int, seed: int = 0) -> list[float]:
    """Values of z0 in the app's 0.05 grid, each different from the one before."""
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < repeats:
        v = round(float(rng.integers(-60, 61)) * 0.05, 2)
        if not values or v != values[-1]:
            values.append(v)
    return values


def warm_release_rerun(at, repeats: int, warmup: int = 2, dim: int = 8) -> float:  # noqa: ANN001
    """Median seconds of at.run() after a studio release moved z0 to a new value; `at` has run once.

    The release is stored as the app's callback stores it (state.take_release)."""
    values = release_values(repeats + warmup)

    def release(i: int) -> None:
        state.take_release(at.session_state, {"z": [values[i]] + [0.0] * (dim - 1)}, dim)
        run_clean(at)

    for i in range(warmup):
        release(i)
    return median_seconds(lambda i: release(warmup + i), repeats)


def release_rerun_apptest(repeats: int) -> float:
    """Whole app in AppTest (models from $VAE_EXPLORER_MODELS): median seconds of the rerun after one
    release, warmed up. AppTest reruns the whole script, not just the fragment."""
    at = apptest()
    run_clean(at)
    return warm_release_rerun(at, repeats)


def _fragment_only(projection_name: str) -> None:
    """An AppTest script (run by AppTest.from_function, so self-contained): the app's real code
    fragment (buttons, studio, summary, URL) on the first model, and nothing else of the page."""
    import streamlit as st

    from app import models
    from app.explorer_page import code_ui
    from explorer import bundle

    path = bundle.list_checkpoints(bundle.models_dir())[0]
    m = models.load_model_or_error(str(path), models.file_version(path))
    code_ui(m, projection_name)


def fragment_rerun_apptest(repeats: int, projection_name: str = "PCA") -> float:
    """Median seconds of an AppTest rerun, after one release, of a script that runs only the app's
    `code_ui` fragment: the fragment body plus its Streamlit elements."""
    at = apptest(function=_fragment_only, projection_name=projection_name)
    run_clean(at)
    return warm_release_rerun(at, repeats)


def apptest_overhead(repeats: int) -> float:
    """Median seconds of an AppTest rerun of a script that only shows the code: the harness's own cost per run."""
    at = apptest(source="import streamlit as st\nst.write(st.session_state.get('latent_code'))\n")
    run_clean(at)
    return warm_release_rerun(at, repeats)


def fragment_body(m: bundle.ExplorerModel, repeats: int) -> float:
    """Median seconds of the computations `code_ui` does per release, called directly (no Streamlit):
    plausibility, nearest test digits and their image, the studio's view and the URL values."""
    z = random_codes(repeats + 1, m.latent_dim, seed=1)
    spacing = studio.neighbour_spacing(m.atlas.mu)  # cached per model in the app

    def body(i: int) -> None:
        studio.plausibility(z[i], m.atlas.mu, spacing)
        nearest, _ = projection.nearest(z[i], m.atlas.mu, 8)
        figures.image_grid(m.atlas.images[nearest].reshape(-1, 28, 28) / 255.0, cols=8, scale=2)
        studio.view_data(m, z[i], 1, "PCA")
        links.encode(m.name, z[i], "PCA", None)

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
