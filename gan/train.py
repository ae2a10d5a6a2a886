"""Train a GAN on any --dataset: `python -m gan.train --arch dcgan --k 1`.

    python -m gan.train --dataset shapes --image-size 32 --epochs 10

Goodfellow et al. 2014, Algorithm 1 (k discriminator steps per generator step), with the
paper's minimax loss, its non-saturating variant, WGAN-GP (Gulrajani et al. 2017), hinge or
LSGAN; stabilisers --spectral-norm, --ema, --r1, --diffaugment and --conditional
(gan/stabilizers.py, gan/conditional.py, docs/gan.md).
A run folder (runs/gan/<name>) receives config.json, TensorBoard events, checkpoints of
both networks and both optimizers every epoch, `generator.keras` (rewritten every epoch),
`generator_best.keras` and `generator_ema_best.keras` (those of the lowest sample FID so far,
with --eval), a sample grid per epoch from a fixed noise batch (samples/epoch_NNN.png,
samples.gif, progress.png), step curves (curves.png, outputs.png) and metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import TrainingSettings, parse_settings, setting
from common.data_settings import DATASETS, RECIPE_NAMES, ImageDataSettings, announce_recipe, default_recipe
from common.errors import UserError, run_cli
from gan.choices import (
    ARCHITECTURES,
    DOWNSAMPLING,
    INITS,
    LOGIT_LOSSES,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    UPSAMPLING,
    parse_augmentations,
)


@dataclass
class Settings(TrainingSettings, ImageDataSettings):
    recipe: str | None = setting(None, "settings under your flags: colour (recipes/gan/colour.json: "
                                       "nearest-upsampling G, averaging D, EMA, DiffAugment) or "
                                       "paper (Radford et al.'s DCGAN, the plain defaults); unset: "
                                       "colour on colour data, else paper",
                                 choices=RECIPE_NAMES)
    arch: str = setting("dcgan", "network pair: dcgan (conv, any multiple of 4 px) or mlp (the "
                                 "paper's, 28×28 only)", choices=ARCHITECTURES)
    width: int = setting(64, "dcgan filters of D's first and G's last hidden layer (doubling per "
                             "stage)", positive=True)
    init: str = setting("glorot", "weight initialisation: glorot (Keras' default; docs/gan.md and "
                                  "docs/experiments.md have the ablations), radford (dcgan: N(0, "
                                  "0.02), γ ~ N(1, 0.02)) or goodfellow (mlp: the GAN paper's code, "
                                  "U(±0.05) in G, U(±0.005) in D, G's output biases from the pixel "
                                  "means)", choices=INITS)
    noise_dim: int = setting(100, "length of the noise vector z ~ N(0, I)", positive=True)
    noise_components: int = setting(0, "N ≥ 2: G first maps z to a mixture of N Gaussians with "
                                       "learnt means, for data on disconnected pieces (DeLiGAN; "
                                       "gan.model.MixtureNoise); 0: off", min=0)
    upsample: str = setting("transposed", "dcgan G's doublings: stride-2 transposed convolutions "
                                          "(Radford et al.) or nearest resize + 3×3 convolution "
                                          "(Odena et al. 2016, no checkerboard)", choices=UPSAMPLING)
    downsample: str = setting("strided", "dcgan D's halvings: stride-2 4×4 convolutions (Radford "
                                         "et al.) or a 3×3 convolution + 2×2 average pool (no "
                                         "checkerboard in the gradient G gets)", choices=DOWNSAMPLING)
    output_activation: str | None = setting(None, "generator output; data are scaled to its range "
                                                  "(unset: tanh on digits, linear otherwise)",
                                            choices=OUTPUT_ACTIVATIONS)
    loss: str = setting("nonsaturating", "GAN objective", choices=LOSSES)
    k: int = setting(1, "discriminator steps per generator step (Algorithm 1)", positive=True)
    label_smoothing: float = setting(0.0, "one-sided label smoothing: real target 1 - s", min=0.0, max=0.5)
    gp_weight: float = setting(10.0, "gradient penalty weight λ (wgan-gp)", min=0.0)
    batch_size: int = setting(64, "images per minibatch (each of the k D steps gets its own)", positive=True)
    epochs: int = setting(30, "passes over the training set, counted in discriminator minibatches",
                          positive=True)
    steps_per_epoch: int | None = setting(None, "cap on generator steps per epoch (default: a full pass)",
                                          positive=True)
    optimizer: str = setting("adam", "adam, or sgd-paper: the GAN paper's SGD, momentum 0.5 → 0.7 "
                                     "over 250 epochs, learning rate ÷ 1.000004 per update "
                                     "(gan/optimizers.py)", choices=OPTIMIZERS)
    lr_d: float = setting(2e-4, "discriminator learning rate", positive=True, max=1.0)
    lr_g: float = setting(2e-4, "generator learning rate", positive=True, max=1.0)
    beta1: float = setting(0.5, "Adam β1 for both networks (--optimizer adam)", min=0.0)
    beta2: float = setting(0.999, "Adam β2 for both networks (--optimizer adam)", min=0.0)
    log_every: int = setting(50, "write step scalars to TensorBoard every N generator steps", positive=True)
    eval: bool = setting(True, "score samples (FID, classifier score, class coverage and histogram) "
                               "with the cached classifier of common.evaluation.classifier")
    eval_every: int = setting(1, "epochs between sample-quality scores", positive=True)
    eval_samples: int = setting(10000, "samples scored each time (k-NN metrics, k = 5: at least 6)", min=6)
    # Stabilisers and conditioning (docs/gan.md, "Stabilisers"; gan/stabilizers.py).
    spectral_norm: bool = setting(False, "dcgan: spectral normalisation of every weight of D "
                                         "(Miyato et al. 2018)")
    r1: float = setting(0.0, "R1 penalty weight γ: D's loss + γ/2·E‖∇D(x)‖² on real images "
                             "(Mescheder et al. 2018; 0: off)", min=0.0)
    ema: float | None = setting(None, "decay of an exponential moving average of G's weights, "
                                      "saved as generator_ema.keras, scored as sample_ema_* and "
                                      "used by gan.sample (e.g. 0.999; unset: off)", min=0.0)
    diffaugment: str | None = setting(None, "DiffAugment on every input of D, real and fake "
                                            "(Zhao et al. 2020): translation, cutout or "
                                            "translation,cutout")
    conditional: bool = setting(False, "class-conditional: G gets a label embedding, D is a "
                                       "projection discriminator (Miyato & Koyama 2018)")
    clusters: int = setting(0, "conditional on K k-means clusters of the training images' pixels "
                               "instead of labels, fake labels drawn by cluster size "
                               "(gan/clusters.py; 0: off)", min=0)

    @staticmethod
    def recipe_defaults(values: dict) -> dict:
        """The recipe under `values` (common.data_settings.default_recipe), less what the
        mlp, which has no resampling layers, cannot take."""
        recipe = default_recipe("gan", values)
        if values.get("arch") == "mlp":
            for name in ("width", "upsample", "downsample"):
                recipe.pop(name, None)
        return recipe

    def __post_init__(self) -> None:
        # Radford et al.'s tanh for the digits (the documented MNIST runs); colour data put
        # the background and the saturated colours at tanh's asymptotes ±1, where its
        # gradient vanishes, so the generator's output is linear there (docs/gan.md).
        digits = self.dataset in DATASETS
        if self.output_activation is None:
            # The paper's MLP generator ends in a sigmoid whose biases the goodfellow init sets.
            self.output_activation = ("sigmoid" if self.init == "goodfellow"
                                      else "tanh" if digits else "linear")

    def validate(self) -> None:
        super().validate()
        self.check_images(self.arch)
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1.0:
                raise UserError(f"--{name}: must be below 1, got {getattr(self, name)}")
        if self.init == "goodfellow" and (self.arch, self.output_activation) != ("mlp", "sigmoid"):
            raise UserError("--init goodfellow: the GAN paper's networks, --arch mlp with a sigmoid "
                            "output (--output-activation sigmoid)")
        if self.ema is not None and self.ema >= 1.0:
            raise UserError(f"--ema: the decay must lie in [0, 1), got {self.ema}")
        if self.diffaugment is not None:
            parse_augmentations(self.diffaugment)
        if self.spectral_norm and self.arch != "dcgan":
            raise UserError("--spectral-norm: implemented for --arch dcgan (the mlp's maxout "
                            "layers are not wrapped)")
        if self.upsample != "transposed" and self.arch != "dcgan":
            raise UserError("--upsample: only the dcgan generator upsamples (the mlp has no convolutions)")
        if self.downsample != "strided" and self.arch != "dcgan":
            raise UserError("--downsample: only the dcgan discriminator downsamples (the mlp has no "
                            "convolutions)")
        if self.noise_components == 1:
            raise UserError("--noise-components: give at least 2 components (0: off)")
        if self.noise_components and self.conditional:
            raise UserError("--noise-components: not with --conditional (the labels already "
                            "split the noise)")
        if self.noise_components and self.noise_dim < 2:
            raise UserError("--noise-components: needs --noise-dim of at least 2 (one picks the "
                            "component)")
        if self.clusters == 1:
            raise UserError("--clusters: give at least 2 clusters (0: off)")
        if self.clusters and self.conditional:
            raise UserError("--clusters: not with --conditional (the clusters stand in for the labels)")
        if self.clusters and self.noise_components:
            raise UserError("--clusters: not with --noise-components (each splits the data its own way)")
        if self.loss not in LOGIT_LOSSES and self.label_smoothing > 0:
            raise UserError(f"--label-smoothing applies to losses of a probability D(x), not to "
                            f"{self.loss}")


def train(settings: Settings) -> Path:
    """Train as `settings` say; returns the run folder."""
    from gan import trainer  # here, not at the top: bad input must fail before TensorFlow loads

    announce_recipe(settings, "gan", "Radford et al.'s DCGAN")
    return trainer.train(settings)


def main(argv: list[str] | None = None) -> Path:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m gan.train")
    return train(settings)


if __name__ == "__main__":
    run_cli(main)
