"""Draw images from a trained diffusion model: `python -m diffusion.sample --run R --steps 50 --out s.png`.

Two samplers, both starting from x_T ~ N(0, I) and using the run's averaged (EMA) U-Net:

- `--sampler ddim` (default): Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models",
  eq. 12, on `--steps` evenly spaced steps τ_S > … > τ_1 of the T trained ones:

      x_{τ−} = √ᾱ_{τ−} x̂_0 + √(1 − ᾱ_{τ−} − σ²) ε̂ + σ z,
      σ = η √((1 − ᾱ_{τ−})/(1 − ᾱ_τ)) √(1 − ᾱ_τ/ᾱ_{τ−}),

  deterministic for `--eta 0`; with η = 1 and all T steps it is the ancestral sampler.
- `--sampler ddpm`: Ho et al. 2020's ancestral sampling (Algorithm 2) through all T steps,
  x_{t−1} = μ̃_t(x_t, x̂_0) + σ_t z with σ_t² = β̃_t.

Both clip x̂_0 to [−1, 1] (as Ho et al.'s code) and read ε̂ back from it. A class-conditional
run draws `--label` (an index or a class name; unset: the classes in turn) with classifier-
free guidance (Ho & Salimans 2022, eq. 6): ε̃ = (1 + w) ε̂(x_t, y) − w ε̂(x_t, ∅), w = `--guidance`
(0: the conditional model alone). `--out` ending in .png writes a grid; .npz `images` uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.conditioning import class_columns, cycled_labels, label_index, requested_labels
from common.config import parse_settings, precision_setting, setting
from common.errors import UserError, first_line, run_cli
from common.latent import slerp
from common.plots import write_samples
from common.precision import load_model
from common.runs import load_run_config, lock_if_writing_into
from diffusion import model as _model  # noqa: F401 (registers TimeEmbedding for loading)
from diffusion.losses import Schedule, at, make_schedule, predict_x0, q_posterior_mean

MODEL_FILE = "model.keras"  # the EMA U-Net
SAMPLERS = ("ddim", "ddpm")
DEFAULT_STEPS = 50  # the comparison's DDIM steps
INTERPOLATION = "slerp between two x_T, decoded by DDIM (η = 0, 50 steps)"


def sampling_times(steps: int, timesteps: int) -> np.ndarray:
    """`steps` step indices from T − 1 down to 0, evenly spaced (all of them when steps = T)."""
    if not 1 <= steps <= timesteps:
        raise UserError(f"--steps: must be between 1 and the run's T = {timesteps}, got {steps}")
    return np.round(np.linspace(timesteps - 1, 0, steps)).astype(np.int32)


def clipped_prediction(x_t: tf.Tensor, t: tf.Tensor, eps: tf.Tensor, alpha_bars: tf.Tensor) -> tuple:
    """(x̂_0 clipped to [−1, 1], the ε̂ that gives it back from x_t)."""
    x0 = tf.clip_by_value(predict_x0(x_t, t, eps, alpha_bars), -1.0, 1.0)
    alpha_bar = at(alpha_bars, t)
    return x0, (x_t - tf.sqrt(alpha_bar) * x0) / tf.sqrt(1.0 - alpha_bar)


def ddim_step(x_t: tf.Tensor, t: tf.Tensor, t_prev: tf.Tensor, eps: tf.Tensor, alpha_bars: tf.Tensor,
              eta: float, noise: tf.Tensor) -> tf.Tensor:
    """x_{τ−} from x_τ (module docstring); t_prev < 0 means the end, ᾱ = 1, x_0 = x̂_0."""
    x0, eps = clipped_prediction(x_t, t, eps, alpha_bars)
    alpha_bar = at(alpha_bars, t)
    alpha_bar_prev = tf.where(t_prev[:, None, None, None] >= 0, at(alpha_bars, tf.maximum(t_prev, 0)), 1.0)
    sigma = eta * tf.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev))
    return (tf.sqrt(alpha_bar_prev) * x0 + tf.sqrt(tf.maximum(1.0 - alpha_bar_prev - sigma ** 2, 0.0)) * eps
            + sigma * noise)


def ancestral_step(x_t: tf.Tensor, t: tf.Tensor, eps: tf.Tensor, schedule: Schedule, noise: tf.Tensor) -> tf.Tensor:
    """x_{t−1} = μ̃_t(x_t, x̂_0) + √β̃_t z (Ho et al. Algorithm 2 with σ_t² = β̃_t; β̃_1 = 0)."""
    x0, _ = clipped_prediction(x_t, t, eps, schedule.constant("alpha_bars"))
    return (q_posterior_mean(x0, x_t, t, schedule)
            + tf.sqrt(at(schedule.constant("posterior_variance"), t)) * noise)


def guided_eps(network: keras.Model, x_t: tf.Tensor, t: tf.Tensor, labels: tf.Tensor | None,
               guidance: float, null_class: int) -> tf.Tensor:
    """ε̂(x_t, t), or with labels ε̃ = (1 + w) ε̂(x_t, y) − w ε̂(x_t, ∅) (w = 0: ε̂(x_t, y) alone)."""
    if labels is None:
        return network([x_t, t])
    conditional = network([x_t, t, labels])
    if guidance == 0:
        return conditional
    unconditional = network([x_t, t, tf.fill(tf.shape(labels), null_class)])
    return (1.0 + guidance) * conditional - guidance * unconditional


@dataclass
class DiffusionSampler:
    """A trained diffusion model behind the protocol the comparison uses for every family.

    `sample(n, seed)` → (n, H, W, C) in [0, 1] by DDIM (η = 0, 50 steps; the classes in turn
    for a conditional run); `draw` takes every sampler option; `interpolations(rows)` →
    DDIM decodings along slerps between pairs of x_T; `curves(metrics)` → L_simple per epoch.
    """

    network: keras.Model
    schedule: Schedule
    info: dict
    batch: int = 500
    steps: int | None = None  # of `sample`'s DDIM (unset: 50, or T if fewer)

    def __post_init__(self) -> None:
        self.n_classes = self.network.get_layer("class_embedding").input_dim - 1 if len(self.network.inputs) == 3 else 0
        self.image_shape = tuple(self.network.inputs[0].shape[1:])
        # guidance and η are Python floats: one trace per value, and w = 0 skips the second pass
        self._ddim, self._ddpm = tf.function(self._ddim_step), tf.function(self._ddpm_step)

    def _ddim_step(self, x, t, t_prev, labels, guidance, eta, noise):
        eps = guided_eps(self.network, x, t, labels, guidance, self.n_classes)
        return ddim_step(x, t, t_prev, eps, self.schedule.constant("alpha_bars"), eta, noise)

    def _ddpm_step(self, x, t, labels, guidance, noise):
        return ancestral_step(x, t, guided_eps(self.network, x, t, labels, guidance, self.n_classes),
                              self.schedule, noise)

    def denoise(self, x_T: np.ndarray, seed: int, steps: int | None = None, eta: float = 0.0,
                labels: np.ndarray | None = None, guidance: float = 0.0, sampler: str = "ddim") -> np.ndarray:
        """x_T (B, H, W, C) → images in [0, 1] (`steps` unset: 50, or T if fewer); the noise z
        of step k comes from (seed, k)."""
        T = self.schedule.steps
        times = sampling_times(T if sampler == "ddpm" else steps or min(DEFAULT_STEPS, T), T)
        x = tf.constant(x_T, tf.float32)
        y = None if labels is None else tf.constant(labels, tf.int32)
        for k, t in enumerate(times):
            batch_t = tf.fill((len(x_T),), t)
            noise = tf.random.stateless_normal(tf.shape(x), seed=[seed, k + 1])
            if sampler == "ddpm":
                x = self._ddpm(x, batch_t, y, float(guidance), noise)
            else:
                t_prev = tf.fill((len(x_T),), times[k + 1] if k + 1 < len(times) else -1)
                x = self._ddim(x, batch_t, t_prev, y, float(guidance), float(eta), noise)
        return np.clip((x.numpy() + 1.0) / 2.0, 0.0, 1.0)

    def draw(self, n: int, seed: int = 0, labels: np.ndarray | None = None, **options) -> np.ndarray:
        """n images in [0, 1], `batch` at a time; batch b starts from the x_T of (seed, b)."""
        parts = []
        for b, start in enumerate(range(0, n, self.batch)):
            size = min(self.batch, n - start)
            x_T = tf.random.stateless_normal((size, *self.image_shape), seed=[seed, 1_000_000 + b]).numpy()
            parts.append(self.denoise(x_T, seed * 1_000 + b, labels=None if labels is None
                                      else labels[start:start + size], **options))
        return np.concatenate(parts)

    def sample(self, n: int, seed: int) -> np.ndarray:
        return self.draw(n, seed, cycled_labels(n, self.n_classes) if self.n_classes else None, steps=self.steps)

    def interpolations(self, rows: int) -> np.ndarray:
        rng = np.random.default_rng(1)
        size = int(np.prod(self.image_shape))
        paths = [slerp(rng.standard_normal(size), rng.standard_normal(size), np.linspace(0, 1, 10))
                 for _ in range(rows)]
        x_T = np.concatenate(paths).reshape(rows * 10, *self.image_shape).astype(np.float32)
        labels = cycled_labels(rows * 10, self.n_classes) if self.n_classes else None
        return self.denoise(x_T, seed=1, labels=labels)

    def curves(self, metrics: dict) -> tuple[str, str, dict[str, tuple[list, list]]]:
        """L_simple per epoch: the training loss and the test loss of the EMA weights."""
        history = metrics.get("history", {})
        epochs, curves = history.get("epoch", []), {}
        for key, label in (("train_loss", "train"), ("test_loss", "test (EMA weights)")):
            points = [(e, v) for e, v in zip(epochs, history.get(key) or []) if v is not None]
            if points:
                curves[label] = ([e for e, _ in points], [v for _, v in points])
        return "L_simple, mean (ε − ε̂)²", "epoch", curves


def load_sampler(run_dir: str | Path, precision: str = "float32", steps: int | None = None) -> DiffusionSampler:
    """The run's EMA U-Net and its schedule (config.json) as a `DiffusionSampler` whose
    `sample` takes `steps` DDIM steps (unset: 50, or T if fewer)."""
    run_dir = Path(run_dir)
    settings = load_run_config(run_dir, "diffusion")["settings"]
    if steps is not None and not 1 <= steps <= settings["timesteps"]:
        raise UserError(f"steps: DDIM takes 1 to T = {settings['timesteps']} steps, got {steps}")
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: has no {MODEL_FILE} yet (the run has not finished)")
    try:
        network = load_model(path, precision)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot load the model ({first_line(error)})") from None
    return DiffusionSampler(network, make_schedule(settings["schedule"], settings["timesteps"]),
                            {"family": "diffusion", "sampler_parameters": network.count_params(),
                             "latent_dim": int(np.prod(network.inputs[0].shape[1:])),
                             "interpolation": INTERPOLATION}, steps=steps)


@dataclass
class Settings:
    run: str = setting("", "run folder of a diffusion.train run")
    out: str = setting("samples.png", "output: .png grid or .npz with uint8 `images`")
    n: int = setting(64, "number of samples", positive=True, max=100000)
    seed: int = setting(0, "seed of x_T and of every step's noise", min=0)
    sampler: str = setting("ddim", "ddim (--steps, --eta) or ddpm (ancestral, all T steps)", choices=SAMPLERS)
    steps: int | None = setting(None, "DDIM steps, 1 … T (unset: 50, or T if fewer)", positive=True)
    eta: float = setting(0.0, "DDIM's η: 0 deterministic, 1 the ancestral sampler's variance", min=0.0)
    label: str | None = setting(None, "class-conditional runs: every sample of this class, an index "
                                      "or a class name (unset: the classes in turn)")
    guidance: float | None = setting(None, "classifier-free guidance weight w ≥ 0 (conditional runs; "
                                           "unset: 0, the conditional model alone)", min=0.0)
    batch_size: int = setting(500, "images denoised at once", positive=True)
    precision: str = precision_setting()

    def validate(self) -> None:
        if not self.run:
            raise UserError("--run: give the run folder of a diffusion.train run")
        if Path(self.out).suffix.lower() not in (".png", ".npz"):
            raise UserError(f"--out: {self.out} must end in .png or .npz")


def main(argv: list[str] | None = None) -> Path:
    settings = parse_settings(Settings, argv, __doc__.splitlines()[0], prog="python -m diffusion.sample")
    with lock_if_writing_into(settings.run, settings.out):
        sampler = load_sampler(settings.run, settings.precision)
        sampler.batch = settings.batch_size
        if settings.sampler == "ddim" and settings.steps is not None:  # a bad --steps fails before the work
            sampling_times(settings.steps, sampler.schedule.steps)
        if settings.guidance is not None and not sampler.n_classes:
            raise UserError(f"--guidance: {settings.run} is not a class-conditional run (train it with --conditional)")
        labels = requested_labels(label_index(settings.label, settings.run), settings.n, sampler.n_classes,
                                  settings.run)
        images = sampler.draw(settings.n, settings.seed, labels, steps=settings.steps, eta=settings.eta,
                              guidance=settings.guidance or 0.0, sampler=settings.sampler)
        cycled = sampler.n_classes if settings.label is None else 0
        write_samples(settings.out, images, class_columns(len(images), cycled))
    print(f"wrote {len(images)} samples to {settings.out}")
    return Path(settings.out)


if __name__ == "__main__":
    run_cli(main)
