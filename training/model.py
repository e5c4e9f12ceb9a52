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
# Where the code's noise comes from. "learnt": the second encoder head (a VAE). "fixed": the same
# log-variance for every input and unit, posterior_logvar, added in training (the ladder's middle
# rungs). "none": no noise at all, the code is the mean (a plain autoencoder).
POSTERIORS = ("learnt", "fixed", "none")
# A plain autoencoder has sigma = 0 (log-variance -inf), which no finite-valued consumer (atlas
# validation, the NumPy runtime's finite-weight check, KL tables) accepts. Its head reports this
# finite stand-in instead: sigma = exp(-15) ~ 3e-7, far below any code spacing (so a "posterior
# sample" is the mean), and the KL it implies (~14.5 nats per unit + mu^2 / 2) is a reminder that a
# point posterior's KL is unbounded. KL and NLL of such a model are reported as undefined.
NO_NOISE_LOGVAR = -30.0


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
    posterior: str = "learnt"  # see POSTERIORS
    posterior_logvar: float = 0.0  # the fixed log-variance of "fixed" (and NO_NOISE_LOGVAR for "none"); unused by "learnt"

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
        if self.posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {self.posterior!r}")
        object.__setattr__(self, "posterior_logvar", float(NO_NOISE_LOGVAR if self.posterior == "none" else self.posterior_logvar))
        if not -60.0 <= self.posterior_logvar <= 10.0:
            raise ValueError(f"posterior_logvar must be a finite log-variance in [-60, 10], got {self.posterior_logvar}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types; a VAE with a learnt posterior (every model before the ladder) leaves out the
        posterior keys, so its config reads exactly as before."""
        d = asdict(self)
        d["encoder_hidden"] = list(self.encoder_hidden)
        d["decoder_hidden"] = list(self.decoder_hidden)
        if self.posterior == "learnt":
            del d["posterior"], d["posterior_logvar"]
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
        if c.posterior != "learnt":
            self._fix_log_scale_head()
        self.decoder_body = _mlp([c.latent_dim, *c.decoder_hidden], c.activation)
        dec_out = c.decoder_hidden[-1] if c.decoder_hidden else c.latent_dim
        # No activation on the output layer: these are Bernoulli logits (the original's ReLU there
        # clipped every logit at 0, i.e. every pixel mean at >= 0.5).
        self.decoder_out = nn.Linear(dec_out, c.input_dim)

    def _fix_log_scale_head(self) -> None:
        """Turn the second head into a constant: zero weights, bias = the fixed log-scale, frozen.

        The noise level then lives in the weights like any head's output, so every consumer of
        `encode` (the atlas, the NumPy runtime, the browser) reads the fixed log-variance with no
        special case; it is also stored in the config (posterior_logvar), which is the truth.
        """
        c = self.config
        with torch.no_grad():
            self.log_scale_head.weight.zero_()
            self.log_scale_head.bias.fill_(c.posterior_logvar / 2.0 if c.log_scale_head == "logsigma" else c.posterior_logvar)
        self.log_scale_head.requires_grad_(False)  # Adam skips parameters without gradients

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
        """x [B, 784] -> (logits [B, 784], mu [B, D], logvar [B, D]) for one z ~ q(z|x) (z = mu
        exactly for a plain autoencoder, posterior "none")."""
        mu, logvar = self.encode(x)
        z = mu if self.config.posterior == "none" else self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
