"""The trained VAE's forward passes in NumPy, from the weights stored in the latent atlas.

The app only ever runs single codes or small batches through an MLP of a few layers: NumPy does
that in tens of microseconds and spares the app torch's ~2 s import. The layer layout mirrors
training.model.VAE exactly (tests compare the two on random weights).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

Array = np.ndarray
IMAGE_PIXELS = 784

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": lambda h: np.maximum(h, 0.0),
    "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0.0))),
    "silu": lambda h: h / (1.0 + np.exp(-h)),
    "tanh": np.tanh,
}


def expected_weight_shapes(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """state_dict name -> shape of every weight the config's architecture has (torch Linear: [out, in])."""
    latent, pixels = int(config["latent_dim"]), int(config.get("input_dim", IMAGE_PIXELS))
    encoder = [pixels, *map(int, config["encoder_hidden"])]
    decoder = [latent, *map(int, config["decoder_hidden"])]
    shapes: dict[str, tuple[int, ...]] = {}
    for prefix, sizes in (("encoder", encoder), ("decoder_body", decoder)):
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            # nn.Sequential(Linear, act, Linear, act, ...): the Linear layers sit at even indices.
            shapes[f"{prefix}.{2 * i}.weight"], shapes[f"{prefix}.{2 * i}.bias"] = (n_out, n_in), (n_out,)
    for head in ("mu_head", "log_scale_head"):
        shapes[f"{head}.weight"], shapes[f"{head}.bias"] = (latent, encoder[-1]), (latent,)
    shapes["decoder_out.weight"], shapes["decoder_out.bias"] = (pixels, decoder[-1]), (pixels,)
    return shapes


def check_weights(config: Mapping[str, Any], weights: Mapping[str, Array]) -> None:
    """Raise ValueError unless `weights` has exactly the names and shapes of the config's layers.

    Exact shapes matter: transposed or mis-sized matrices can still multiply and decode blank digits.
    """
    try:
        want = expected_weight_shapes(config)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the model config is incomplete ({type(e).__name__}: {e})") from e
    if config.get("activation", "relu") not in ACTIVATIONS:
        raise ValueError(f"unknown activation {config.get('activation')!r}")
    missing, extra = sorted(set(want) - set(weights)), sorted(set(weights) - set(want))
    if missing or extra:
        raise ValueError(f"the stored weights do not match the model config (missing {missing}, unexpected {extra})")
    for name, shape in want.items():
        w = weights[name]
        if tuple(w.shape) != shape:
            raise ValueError(f"weight {name} has shape {list(w.shape)}, the model config needs {list(shape)}")
        if not np.isfinite(w).all():
            raise ValueError(f"weight {name} holds NaN or infinite values")


def _stack(weights: Mapping[str, Array], prefix: str, n_layers: int) -> list[tuple[Array, Array]]:
    """(W.T, b) for the Linear layers of an nn.Sequential(Linear, act, Linear, act, ...)."""
    return [(np.ascontiguousarray(weights[f"{prefix}.{2 * i}.weight"].T, dtype=np.float32),
             weights[f"{prefix}.{2 * i}.bias"].astype(np.float32)) for i in range(n_layers)]


def _linear(weights: Mapping[str, Array], name: str) -> tuple[Array, Array]:
    return np.ascontiguousarray(weights[f"{name}.weight"].T, dtype=np.float32), weights[f"{name}.bias"].astype(np.float32)


class NumpyVAE:
    """The encoder and decoder of a trained VAE; weights are the torch state_dict's arrays by name.

    Raises ValueError if the weights do not fit the config exactly (see `check_weights`).
    """

    def __init__(self, config: Mapping[str, Any], weights: Mapping[str, Array]) -> None:
        check_weights(config, weights)
        self.config = dict(config)
        self.latent_dim = int(config["latent_dim"])
        self._act = ACTIVATIONS[config.get("activation", "relu")]
        self._logsigma = config.get("log_scale_head", "logvar") == "logsigma"
        self._encoder = _stack(weights, "encoder", len(config["encoder_hidden"]))
        self._decoder = _stack(weights, "decoder_body", len(config["decoder_hidden"]))
        self._mu, self._scale, self._out = (_linear(weights, n) for n in ("mu_head", "log_scale_head", "decoder_out"))
        self._n_params = int(sum(a.size for a in weights.values()))

    def num_parameters(self) -> int:
        return self._n_params

    def _mlp(self, h: Array, layers: list[tuple[Array, Array]]) -> Array:
        for w, b in layers:
            h = self._act(h @ w + b)
        return h

    def encode_mu_logvar(self, x: Array) -> tuple[Array, Array]:
        """x [B, 784] in [0, 1] -> (mu [B, D], logvar [B, D]) of q(z|x)."""
        h = self._mlp(np.asarray(x, dtype=np.float32), self._encoder)
        log_scale = h @ self._scale[0] + self._scale[1]
        return h @ self._mu[0] + self._mu[1], (2.0 * log_scale if self._logsigma else log_scale)

    def decode_logits(self, z: Array) -> Array:
        """z [..., D] -> Bernoulli logits [..., 784]; pixel means are their sigmoid."""
        h = self._mlp(np.asarray(z, dtype=np.float32), self._decoder)
        return h @ self._out[0] + self._out[1]
