"""The trained VAE's forward passes in NumPy, from the weights stored in the latent atlas.

The app only ever runs single codes or small batches through an MLP of a few layers: NumPy does
that in tens of microseconds and spares the app torch's ~2 s import. The layer layout mirrors
training.model.VAE exactly (tests compare the two on random weights).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

Array = np.ndarray

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": lambda h: np.maximum(h, 0.0),
    "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0.0))),
    "silu": lambda h: h / (1.0 + np.exp(-h)),
    "tanh": np.tanh,
}


def _stack(weights: Mapping[str, Array], prefix: str, n_layers: int) -> list[tuple[Array, Array]]:
    """(W.T, b) for the Linear layers of an nn.Sequential(Linear, act, Linear, act, ...)."""
    return [(np.ascontiguousarray(weights[f"{prefix}.{2 * i}.weight"].T, dtype=np.float32),
             weights[f"{prefix}.{2 * i}.bias"].astype(np.float32)) for i in range(n_layers)]


class NumpyVAE:
    """encode / decode of a trained VAE; weights are the torch state_dict's arrays by name."""

    def __init__(self, config: Mapping[str, Any], weights: Mapping[str, Array]) -> None:
        self.config = dict(config)
        self.latent_dim = int(config["latent_dim"])
        self._act = ACTIVATIONS[config.get("activation", "relu")]
        self._logsigma = config.get("log_scale_head", "logvar") == "logsigma"
        try:
            self._encoder = _stack(weights, "encoder", len(config["encoder_hidden"]))
            self._decoder = _stack(weights, "decoder_body", len(config["decoder_hidden"]))
            self._mu = (weights["mu_head.weight"].T.astype(np.float32), weights["mu_head.bias"].astype(np.float32))
            self._scale = (weights["log_scale_head.weight"].T.astype(np.float32), weights["log_scale_head.bias"].astype(np.float32))
            self._out = (np.ascontiguousarray(weights["decoder_out.weight"].T, dtype=np.float32), weights["decoder_out.bias"].astype(np.float32))
        except KeyError as e:
            raise ValueError(f"the stored weights do not match the model config (missing {e})") from e
        if self._mu[0].shape[1] != self.latent_dim or self._out[0].shape[0] != (config["decoder_hidden"] or [self.latent_dim])[-1]:
            raise ValueError("the stored weights do not match the model config (layer sizes differ)")
        self._n_params = int(sum(a.size for a in weights.values()))

    def num_parameters(self) -> int:
        return self._n_params

    def _mlp(self, h: Array, layers: list[tuple[Array, Array]]) -> Array:
        for w, b in layers:
            h = self._act(h @ w + b)
        return h

    def encode(self, x: Array) -> tuple[Array, Array]:
        """x [B, 784] in [0, 1] -> (mu [B, D], logvar [B, D])."""
        h = self._mlp(np.asarray(x, dtype=np.float32), self._encoder)
        log_scale = h @ self._scale[0] + self._scale[1]
        return h @ self._mu[0] + self._mu[1], (2.0 * log_scale if self._logsigma else log_scale)

    def decode(self, z: Array) -> Array:
        """z [..., D] -> Bernoulli logits [..., 784]."""
        h = self._mlp(np.asarray(z, dtype=np.float32), self._decoder)
        return h @ self._out[0] + self._out[1]
