"""Train a VAE on binarized MNIST (or any --dataset) and report its test log-likelihood.

    python -m vae.train --name mlp50 --epochs 100
    python -m vae.train --arch conv --latent-dim 2 --epochs 30      # + manifold and latent plots
    python -m vae.train --name mlp50 --epochs 100 --resume          # continue a killed run
    python -m vae.train --dataset shapes --image-size 32 --arch conv --likelihood logistic
    python -m vae.train --objective iwae --iwae-k 5 --epochs 100    # Burda et al.'s IWAE objective

Every epoch the test split gives the ELBO, its two terms, the active units and (with a
small k, on a subset) the importance-weighted NLL; at the end the NLL uses k = --nll-k
on the whole test set, with a progress bar: 100 by default, which costs a fraction of the
training; 5000 (Burda et al. 2015) for published numbers, as recipes/vae/mnist.json sets it.
Results go to runs/vae/<name>/: config.json, metrics.json (docs/runs.md), model.keras,
checkpoints/, tensorboard/ and PNGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import TrainingSettings, parse_settings, setting
from common.data_settings import (
    BINARIZATIONS,
    DATASETS,
    RECIPE_NAMES,
    ImageDataSettings,
    announce_recipe,
    default_recipe,
)
from common.errors import UserError, run_cli
from vae.choices import ARCHITECTURES, LIKELIHOODS, OBJECTIVES


@dataclass
class Settings(TrainingSettings, ImageDataSettings):
    recipe: str | None = setting(None, "settings under your flags: colour (recipes/vae/colour.json: "
                                       "conv networks, discretized logistic, a run long enough for "
                                       "--max-minutes, sparse evaluation) or paper (the plain "
                                       "defaults); unset: colour on colour data, else paper",
                                 choices=RECIPE_NAMES)
    likelihood: str | None = setting(None, "decoder p(x|z): bernoulli, continuous-bernoulli or "
                                           "logistic (discretized, 256 levels); unset: bernoulli "
                                           "on 28×28 digits, else logistic", choices=LIKELIHOODS)
    binarize: str | None = setting(None, "dynamic: a fresh Bernoulli sample every epoch; static: "
                                         "threshold 0.5; none: grey targets; unset: dynamic for "
                                         "a Bernoulli decoder on digits, else none",
                                   choices=BINARIZATIONS)
    arch: str | None = setting(None, "encoder/decoder: mlp (784-500-500-z, tanh; 28×28 only) or "
                                     "conv (keras-io, any size); unset: mlp on 28×28 digits, "
                                     "else conv", choices=ARCHITECTURES)
    latent_dim: int = setting(50, "size of z (2 adds the manifold and latent-scatter plots)",
                              positive=True)
    hidden_units: list[int] = setting([500, 500], "hidden layer sizes of the mlp encoder "
                                                  "(the decoder mirrors them)", positive=True)
    beta: float = setting(1.0, "weight of the KL term in the training loss", min=0.0)
    kl_warmup: int = setting(0, "epochs over which the KL weight rises linearly from 0 to beta",
                             min=0)
    epochs: int = setting(10, "training epochs", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on batches per epoch; unset: one pass",
                                          positive=True)
    batch_size: int = setting(100, "examples per batch (over all replicas)", positive=True)
    lr: float = setting(1e-3, "Adam learning rate", positive=True)
    nll_k: int = setting(100, "importance samples per image for the final test NLL (5000, Burda et "
                              "al.'s, for published numbers: the recipes set it)", positive=True)
    nll_k_train: int = setting(100, "importance samples for the NLL during training (0: off)",
                               min=0)
    nll_every: int = setting(1, "epochs between NLL estimates during training", positive=True)
    nll_examples: int = setting(1000, "test images for the NLL during training", positive=True)
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage) with the "
                               "cached classifier, when there is one")
    eval_every: int = setting(5, "epochs between sample-quality scores", positive=True)
    objective: str = setting("elbo", "training objective: elbo (Kingma & Welling) or iwae, the "
                                      "importance-weighted bound L_k (Burda et al. 2015)",
                             choices=OBJECTIVES)
    iwae_k: int = setting(5, "importance samples per image of --objective iwae", positive=True)
    conditional: bool = setting(False, "class-conditional VAE: the one-hot label goes into the "
                                       "encoder and the decoder (Sohn et al. 2015); the NLL is "
                                       "then −log p(x|y)")

    @staticmethod
    def recipe_defaults(values: dict) -> dict:
        """The recipe under `values` (common.data_settings.default_recipe)."""
        return default_recipe("vae", values)

    def __post_init__(self) -> None:
        # Unset: the paper's MLP and Bernoulli decoder for binarized digits; colour and other
        # sizes need the conv networks and a likelihood for 8-bit pixels.
        digits = self.dataset in DATASETS and self.image_size in (None, 28) and self.channels in (None, 1)
        if self.arch is None:
            self.arch = "mlp" if digits else "conv"
        if self.likelihood is None:
            self.likelihood = "bernoulli" if digits else "logistic"

    def validate(self) -> None:
        super().validate()
        self.check_images(self.arch)
        if self.objective == "iwae" and (self.beta != 1.0 or self.kl_warmup):
            raise UserError("--objective iwae: the bound has no KL weight; leave --beta 1 and "
                            "--kl-warmup 0")


def train(settings: Settings) -> Path:
    """Train (or resume) a VAE as `settings` say; returns the run folder."""
    from vae import trainer  # here, not at the top: bad input must fail before TensorFlow loads

    announce_recipe(settings, "vae", "the plain defaults")
    return trainer.train(settings)


def main(argv: list[str] | None = None) -> None:
    train(parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m vae.train"))


if __name__ == "__main__":
    run_cli(main)
