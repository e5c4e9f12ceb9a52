"""The MLP VAE: Gaussian encoder q(z|x), standard-normal prior, Bernoulli decoder p(x|z).

Shapes: x is [B, 784] in [0, 1]; z, mu and logvar are [B, D]; decoder logits are [B, 784].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh}
LIKELIHOODS = ("bernoulli", "mse")
LOG_SCALE_HEADS = ("logvar", "logsigma")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a VAE; stored in every checkpoint.

    `log_scale_head` says what the second encoder head outputs: the original design predicts
    log-sigma (so `encode` returns 2 * head), the default predicts log-variance directly.
    `likelihood` only changes the training loss ("mse" = the original design's squared error on
    sigmoid(logits)); evaluation always scores the Bernoulli likelihood so numbers compare.
    """

    input_dim: int = 784
    encoder_hidden: tuple[int, ...] = (512, 512)
    decoder_hidden: tuple[int, ...] = (512, 512)
    latent_dim: int = 8
    activation: str = "relu"
    likelihood: str = "bernoulli"
    log_scale_head: str = "logvar"

    def __post_init__(self) -> None:
        # Tuples survive torch.save(weights_only) as lists; normalise so equality works after loading.
        object.__setattr__(self, "encoder_hidden", tuple(int(h) for h in self.encoder_hidden))
        object.__setattr__(self, "decoder_hidden", tuple(int(h) for h in self.decoder_hidden))
        if self.latent_dim < 1 or self.input_dim < 1 or any(h < 1 for h in self.encoder_hidden + self.decoder_hidden):
            raise ValueError(f"layer sizes must be positive: {self}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.log_scale_head not in LOG_SCALE_HEADS:
            raise ValueError(f"log_scale_head must be one of {LOG_SCALE_HEADS}, got {self.log_scale_head!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoder_hidden"] = list(self.encoder_hidden)
        d["decoder_hidden"] = list(self.decoder_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**d)


# `seed` is the original design, layer for layer: 784-100-100 ReLU encoder, two 100->8 heads
# (mean, log-sigma), 8-100-784 decoder. `default` is the best model we have trained (README table).
PRESETS: dict[str, ModelConfig] = {
    "seed": ModelConfig(encoder_hidden=(100, 100), decoder_hidden=(100,), latent_dim=8, log_scale_head="logsigma"),
    "default": ModelConfig(),
}


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """The named preset with any non-None overrides applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers with the activation between them and after the last (it feeds a head)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """MLP VAE with the names everybody expects (pytorch/examples): encode, reparameterize, decode."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = _mlp([c.input_dim, *c.encoder_hidden], c.activation)
        enc_out = c.encoder_hidden[-1] if c.encoder_hidden else c.input_dim
        self.mu_head = nn.Linear(enc_out, c.latent_dim)
        self.log_scale_head = nn.Linear(enc_out, c.latent_dim)
        self.decoder_body = _mlp([c.latent_dim, *c.decoder_hidden], c.activation)
        dec_out = c.decoder_hidden[-1] if c.decoder_hidden else c.latent_dim
        # No activation on the output layer: these are Bernoulli logits (the original's ReLU there
        # clipped every logit at 0, i.e. every pixel mean at >= 0.5).
        self.decoder_out = nn.Linear(dec_out, c.input_dim)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 784] in [0, 1] -> (mu [B, D], logvar [B, D]) of q(z|x)."""
        h = self.encoder(x)
        log_scale = self.log_scale_head(h)
        logvar = 2.0 * log_scale if self.config.log_scale_head == "logsigma" else log_scale
        return self.mu_head(h), logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, sec. 2.4); shapes [..., D]."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [..., D] -> Bernoulli logits [..., 784]; pixel means are their sigmoid."""
        return self.decoder_out(self.decoder_body(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, 784] -> (logits [B, 784], mu [B, D], logvar [B, D]) for one z ~ q(z|x)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
