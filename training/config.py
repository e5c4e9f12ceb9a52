"""The training configuration: one typed dataclass whose fields are the CLI flags, 1:1.

Defaults live here and nowhere else; `python -m training --help` is generated from this class.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence, get_args, get_origin, get_type_hints

import torch

from training.model import ModelConfig, preset_config

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS_DIR = "runs"  # default home of training runs (git-ignored): never the shipped models/


@dataclass
class TrainConfig:
    """Training run settings. Model fields left as None take the preset's value."""

    preset: str = "default"  # model preset: "default" (best we have) or "seed" (the original design)
    epochs: int = 250  # passes over the 60k training images
    batch_size: int = 128
    lr: float = 1e-3  # Adam learning rate at the start of the schedule
    lr_schedule: str = "cosine"  # "cosine" (to lr_min_ratio*lr at the last epoch) or "constant"
    lr_min_ratio: float = 0.05
    weight_decay: float = 0.0  # >0 switches Adam to AdamW with this decoupled weight decay
    latent_dim: int | None = None
    encoder_hidden: tuple[int, ...] | None = None
    decoder_hidden: tuple[int, ...] | None = None
    activation: str | None = None
    likelihood: str | None = None  # "bernoulli" or "mse" (the original design's loss)
    posterior: str | None = None  # where the code's noise comes from: "learnt" (a VAE, the presets' choice), "fixed" (NOISE_SIGMA for every input) or "none" (a plain autoencoder: the code is the mean)
    noise_sigma: float | None = None  # the fixed noise's standard deviation, with --posterior fixed
    beta: float = 1.0  # weight of the KL term once warm-up is over
    warmup_epochs: float = 10.0  # linear KL warm-up from 0 to beta; 0 disables it
    iw_samples: int = 1  # >1 trains on the importance-weighted bound (IWAE) with that many samples; the best checkpoint is then chosen by the test IWAE bound
    init_from: str | None = None  # start from this checkpoint's weights and architecture (fine-tuning); preset and sizes are ignored
    binarize: bool = True  # dynamic binarisation: a fresh Bernoulli draw of each batch
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (1 is faster when the cores are shared)
    device: str = "auto"  # "auto" (cuda if present), "cpu" or "cuda"
    output: str | None = None  # best checkpoint (by test objective); default runs/<preset>-z<D>-<objective>-beta<b>-lr<lr>-e<epochs>-seed<s>.pt; resume state goes to *.last.pt
    resume: bool = False  # continue from OUTPUT's .last.pt if it exists
    force: bool = False  # replace an existing OUTPUT checkpoint (without it, a run never overwrites one)
    data_root: str = "data"  # MNIST lives (or is fetched to) DATA_ROOT/MNIST/raw
    atlas: bool = True  # write the latent atlas (incl. t-SNE) next to the best checkpoint at the end
    atlas_subset: bool = False  # the atlas keeps only the test digits the training dynamics follow (2,006 of 10,000: every 5th and the first 8), to stay small; its metrics still cover every test digit
    dynamics: bool = True  # record the training dynamics (test statistics every epoch, snapshots at a dozen epochs) in OUTPUT's .dynamics.npz; the atlas carries them
    eval_iw_samples: int | None = None  # importance samples k for the final NLL stored with the atlas; default min(1000, 20 x EPOCHS), so the final evaluation costs about as much as training; 0 skips it
    progress: bool = True  # tqdm progress bars

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.iw_samples < 1:
            raise ValueError(f"iw_samples must be >= 1, got {self.iw_samples}")
        if self.beta < 0 or self.warmup_epochs < 0:
            raise ValueError("beta and warmup_epochs must be >= 0")
        if self.eval_iw_samples is not None and self.eval_iw_samples < 0:
            raise ValueError(f"eval_iw_samples must be >= 0, got {self.eval_iw_samples}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("encoder_hidden", "decoder_hidden"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(int(v) for v in value))
        if (self.posterior == "fixed") != (self.noise_sigma is not None):
            raise ValueError("--noise-sigma goes with --posterior fixed, and --posterior fixed needs it")
        if self.noise_sigma is not None and not 1e-6 <= self.noise_sigma <= 100:
            raise ValueError(f"noise_sigma must be in [1e-6, 100], got {self.noise_sigma}")

    def model_config(self) -> ModelConfig:
        """The preset with this run's overrides."""
        return preset_config(
            self.preset,
            latent_dim=self.latent_dim,
            encoder_hidden=self.encoder_hidden,
            decoder_hidden=self.decoder_hidden,
            activation=self.activation,
            likelihood=self.likelihood,
            posterior=self.posterior,
            posterior_logvar=None if self.noise_sigma is None else 2.0 * math.log(self.noise_sigma),
        )

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but no CUDA device is available")
        return torch.device(self.device)

    def output_path(self) -> Path:
        """--output, or runs/<default_output_name()> (git-ignored) under the repo."""
        p = Path(self.output) if self.output else Path(RUNS_DIR) / self.default_output_name()
        return p if p.is_absolute() else REPO_ROOT / p

    def default_output_name(self) -> str:
        """A file name that says what the run trains, e.g. 'default-z8-elbo-beta1-lr0.001-e250-seed0.pt';
        deterministic, so the same command with --resume finds its own files."""
        objective = f"iwae{self.iw_samples}" if self.iw_samples > 1 else "elbo"
        origin = f"ft-{Path(self.init_from).stem}" if self.init_from else self.preset
        latent = f"-z{self.latent_dim}" if self.latent_dim is not None else f"-z{self.model_config().latent_dim}"
        return f"{origin}{'' if self.init_from else latent}-{objective}-beta{self.beta:g}-lr{self.lr:g}-e{self.epochs}-seed{self.seed}.pt"

    def final_eval_samples(self) -> int:
        """k of the final NLL: --eval-iw-samples if given, else min(1000, 20 x epochs).

        An IWAE evaluation with k samples on the 10k test digits costs about k/18 training epochs
        of compute (forward passes only, 10k instead of 60k images), so 20 per epoch keeps it about
        as long as the training: a 1-epoch run gets k=20 in ~1 s, a run of 50 epochs or more k=1000.
        The run's --epochs, not the epochs this invocation ran, so a run resumed after a kill ends
        with the same atlas as the uninterrupted one.
        """
        if self.eval_iw_samples is not None:
            return self.eval_iw_samples
        return min(1000, 20 * self.epochs)

    def data_path(self) -> Path:
        """--data-root; a relative one is under the repo root (by default the repo's data/)."""
        p = Path(self.data_root)
        return p if p.is_absolute() else REPO_ROOT / p

    def init_path(self) -> Path | None:
        """--init-from as a path (a relative one is under the repo root), or None."""
        if not self.init_from:
            return None
        p = Path(self.init_from)
        return p if p.is_absolute() else REPO_ROOT / p

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint holding it loads with weights_only=True."""
        d = dataclasses.asdict(self)
        for name in ("encoder_hidden", "decoder_hidden"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _field_help() -> dict[str, str]:
    """The trailing comments above, reused as --help text."""
    import inspect

    helps: dict[str, str] = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith(("#", "def", '"')):
            name = line.split(":", 1)[0].strip()
            helps[name] = line.split("#", 1)[1].strip()
    return helps


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field (snake_case -> --kebab-case), typed from the annotations."""
    parser = argparse.ArgumentParser(prog="python -m training", description="Train the MNIST VAE.")
    hints = get_type_hints(TrainConfig)
    helps = _field_help()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        kwargs: dict[str, Any] = {"dest": f.name, "default": f.default}
        text = helps.get(f.name, "")
        args = [a for a in get_args(hint) if a is not type(None)]
        base = args[0] if args else hint
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(base) is tuple:
            kwargs.update(type=int, nargs="+", metavar="N")
        else:
            kwargs["type"] = base
        if f.default is None and "default" in text:
            kwargs["help"] = text  # the comment says what an unset value means (e.g. --output, --eval-iw-samples)
        else:
            kwargs["help"] = f"{text} (default: {f.default})" if text else f"(default: {f.default})"
        parser.add_argument(flag, **kwargs)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    ns = build_parser().parse_args(argv)
    return TrainConfig(**vars(ns))
