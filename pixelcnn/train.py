"""Train a PixelCNN and report its exact test log-likelihood.

    python -m pixelcnn.train --config recipes/pixelcnn/mnist.json   # the documented MNIST result
    python -m pixelcnn.train --epochs 2 --max-minutes 10             # binarized MNIST, gated stack
    python -m pixelcnn.train --dataset shapes --image-size 32         # 8-bit colour, 256-way softmax
    python -m pixelcnn.train --conditional                             # p(x | class)

Every epoch: the exact NLL of the test set (`test_nll`, nats per image; `test_bits_per_dim`)
and of the validation split (`validation_nll`), whose lowest value picks the weights kept
as model_best.keras; a grid of samples in TensorBoard. At the end the kept weights are
scored on the test set (metrics.json `test_nll`, `test_bits_per_dim`, `best_epoch`).
Binarized digits use the VAE's fixed binarization of the test set, so the two families'
numbers share a column. Results go to runs/pixelcnn/<name>/ (docs/runs.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import TrainingSettings, parse_settings, setting
from common.data_settings import BINARIZATIONS, DATASETS, ImageDataSettings
from common.errors import UserError, run_cli
from pixelcnn.choices import ARCHITECTURES, LIKELIHOODS


@dataclass
class Settings(TrainingSettings, ImageDataSettings):
    likelihood: str | None = setting(None, "p(x_i | x_<i): bernoulli (binarized data) or categorical "
                                           "(a 256-way softmax over 8-bit levels); unset: bernoulli "
                                           "on 28×28 digits, else categorical", choices=LIKELIHOODS)
    binarize: str | None = setting(None, "dynamic: a fresh Bernoulli sample every epoch; static: "
                                         "threshold 0.5; none: 8-bit levels; unset: dynamic for "
                                         "bernoulli, else none", choices=BINARIZATIONS)
    arch: str = setting("gated", "gated (vertical + horizontal stacks, no blind spot) or plain "
                                 "(masked convolutions, van den Oord et al. 2016a)", choices=ARCHITECTURES)
    features: int = setting(32, "feature maps per layer", positive=True)
    layers: int = setting(6, "gated (or plain residual) layers", positive=True)
    kernel_size: int = setting(5, "kernel width k, odd (gated: k//2+1 × k vertical, 1 × k//2+1 "
                                  "horizontal)", min=3)
    epochs: int = setting(10, "training epochs", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on batches per epoch; unset: one pass", positive=True)
    batch_size: int = setting(64, "examples per batch", positive=True)
    lr: float = setting(1e-3, "Adam learning rate", positive=True)
    lr_decay: float = setting(1.0, "factor on the learning rate per epoch: epoch e trains at "
                                   "lr·decay^e (1: constant)", positive=True)
    conditional: bool = setting(False, "class-conditional: a bias from the one-hot class in every "
                                       "layer; the NLL is then −log p(x|y)")
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage) with the "
                               "cached classifier, when there is one")
    eval_every: int = setting(5, "epochs between sample-quality scores", positive=True)
    eval_samples: int = setting(1000, "samples per sample-quality score (k-NN metrics, k = 5: at least 6)",
                                min=6)

    def __post_init__(self) -> None:
        digits = self.dataset in DATASETS and self.image_size in (None, 28) and self.channels in (None, 1)
        if self.likelihood is None:
            self.likelihood = "bernoulli" if digits else "categorical"
        if self.binarize is None:
            self.binarize = "dynamic" if self.likelihood == "bernoulli" else "none"

    def validate(self) -> None:
        super().validate()
        self.check_images("conv")
        if self.lr_decay > 1:
            raise UserError(f"--lr-decay: at most 1 (a decay), got {self.lr_decay}")
        if self.kernel_size % 2 == 0:
            raise UserError(f"--kernel-size: must be odd, got {self.kernel_size}")
        if (self.likelihood == "bernoulli") != (self.binarize != "none"):
            raise UserError(f"--likelihood {self.likelihood} with --binarize {self.binarize}: a Bernoulli "
                            "needs binary data, the categorical 8-bit levels")


def train(settings: Settings) -> Path:
    """Train (or resume) a PixelCNN as `settings` say; returns the run folder."""
    from pixelcnn import trainer  # here, not at the top: bad input must fail before TensorFlow loads

    return trainer.train(settings)


def main(argv: list[str] | None = None) -> None:
    train(parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m pixelcnn.train"))


if __name__ == "__main__":
    run_cli(main)
