"""Train a denoising diffusion model (DDPM) and report its sample quality and likelihood bound.

    python -m diffusion.train --config recipes/diffusion/mnist.json   # the documented MNIST result
    python -m diffusion.train --epochs 1 --max-minutes 10              # MNIST, 8-bit grey levels
    python -m diffusion.train --dataset shapes --image-size 32          # colour
    python -m diffusion.train --conditional                             # p(x | y), guidance-ready

Every epoch: the simple loss on the first 1,000 test images with the averaged weights
(`test_loss`) and 64 images from fixed noise (DDIM, `--sample-steps`) in samples.png and
TensorBoard; every `--eval-every` epochs the FID, classifier score and class coverage of
`--eval-samples` samples, when the dataset's classifier is cached. At the end the EMA U-Net
is saved as model.keras (what `diffusion.sample` loads), and the variational bound is
measured on the first `--bound-images` test images (metrics.json `test_bits_per_dim`,
`test_bound_nats`).
Results go to runs/diffusion/<name>/ (docs/runs.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import TrainingSettings, parse_settings, setting
from common.data_settings import ImageDataSettings
from common.errors import UserError, run_cli
from diffusion.choices import SCHEDULES


@dataclass
class Settings(TrainingSettings, ImageDataSettings):
    features: int = setting(32, "U-Net width at full resolution (× 1, 2, 2, … below), a multiple of 8",
                            positive=True)
    res_blocks: int = setting(2, "residual blocks per resolution", positive=True)
    attention: bool = setting(True, "self-attention in the middle, at the lowest resolution")
    dropout: float = setting(0.0, "dropout in every residual block (Ho et al.: 0.1 on CIFAR-10)",
                             min=0.0, max=0.9)
    schedule: str = setting("linear", "noise schedule: linear (Ho et al. 2020) or cosine (Nichol & "
                                      "Dhariwal 2021)", choices=SCHEDULES)
    timesteps: int = setting(1000, "diffusion steps T", min=2)
    ema: float = setting(0.999, "decay of the weights' moving average that samples", min=0.0, max=0.99999)
    epochs: int = setting(10, "training epochs", positive=True)
    steps_per_epoch: int | None = setting(None, "cap on batches per epoch; unset: one pass", positive=True)
    batch_size: int = setting(64, "examples per batch", positive=True)
    lr: float = setting(5e-4, "Adam learning rate", positive=True)
    conditional: bool = setting(False, "class-conditional, with the null class for guidance")
    label_dropout: float = setting(0.1, "conditional: share of labels replaced by the null class "
                                        "(Ho & Salimans: 0.1–0.2)", min=0.0, max=1.0)
    sample_steps: int = setting(50, "DDIM steps of the epoch grids and the sample scores", positive=True)
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage) with the "
                               "cached classifier, when there is one")
    eval_every: int = setting(5, "epochs between sample-quality scores", positive=True)
    eval_samples: int = setting(1000, "samples per sample-quality score (k-NN metrics, k = 5: at least 6)",
                                min=6)
    bound_images: int = setting(100, "test images the final likelihood bound is measured on "
                                     "(T network passes each; 0: none)", min=0)

    def validate(self) -> None:
        super().validate()
        self.check_images("conv")
        if self.features % 8:
            raise UserError(f"--features: must be a multiple of 8 (group norm's groups), got {self.features}")
        if self.sample_steps > self.timesteps:
            raise UserError(f"--sample-steps: {self.sample_steps} is more than --timesteps {self.timesteps}")


def train(settings: Settings) -> Path:
    """Train (or resume) a diffusion model as `settings` say; returns the run folder."""
    from diffusion import trainer  # here, not at the top: bad input must fail before TensorFlow loads

    return trainer.train(settings)


def main(argv: list[str] | None = None) -> None:
    train(parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m diffusion.train"))


if __name__ == "__main__":
    run_cli(main)
