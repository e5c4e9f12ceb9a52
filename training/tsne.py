"""2-D t-SNE of latent codes with a progress bar: scikit-learn's TSNE, its iterations shown by tqdm.

scikit-learn reports progress only as "[t-SNE] Iteration 50: ..." lines printed at verbose=2 (every
50 iterations, from Python). `tsne_2d` captures those lines and advances a tqdm bar instead, so the
minute a 10k-code t-SNE takes shows progress like the rest of training. verbose changes nothing
in the computation: the result is the same array as a silent run.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
from tqdm import tqdm

MAX_ITER = 1000  # scikit-learn's default number of optimisation iterations
_ITERATION = re.compile(r"\[t-SNE\] Iteration (\d+):")


class _IterationsToBar(io.TextIOBase):
    """A text sink that moves `bar` to the iteration number of each "[t-SNE] Iteration N:" line."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def write(self, text: str) -> int:
        for match in _ITERATION.finditer(text):
            self.bar.update(int(match.group(1)) - self.bar.n)
        return len(text)


def perplexity_for(n: int) -> float:
    """30 (the usual value) unless there are too few points for it: scikit-learn needs perplexity < n."""
    return float(min(30.0, max(2.0, (n - 1) / 3.0)))


def tsne_2d(mu: np.ndarray, seed: int = 0, progress: bool = True, max_iter: int = MAX_ITER) -> np.ndarray:
    """2-D t-SNE of mu [N, D] (PCA init, fixed seed) -> float32 [N, 2]; a tqdm bar over the iterations.
    max_iter (>= 250, scikit-learn's minimum) exists for tests; atlases use the default."""
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=perplexity_for(len(mu)), init="pca", random_state=seed,
                max_iter=max_iter, verbose=2 if progress else 0)
    if not progress:
        return tsne.fit_transform(mu.astype(np.float64)).astype(np.float32)
    with tqdm(total=max_iter, desc="t-SNE", unit="it") as bar:
        with contextlib.redirect_stdout(_IterationsToBar(bar)):
            out = tsne.fit_transform(mu.astype(np.float64))
        bar.update(bar.total - bar.n)  # it may stop early once the gradient stops changing
    return out.astype(np.float32)
