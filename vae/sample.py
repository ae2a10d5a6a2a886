"""Samples, interpolations and figures from a trained VAE.

    python -m vae.sample --run runs/vae/NAME --n 64 --out samples.png
    python -m vae.sample --run runs/vae/NAME --n 2000 --out samples.npz   # `images` uint8 (N, H, W[, C])
    python -m vae.sample --run runs/vae/NAME --interpolate --out interpolation.png
    python -m vae.sample --run runs/vae/NAME --traverse --out traversals.png   # shapes: one row per factor
    python -m vae.sample --run runs/vae/NAME --prior gmm --components 10 --out gmm.png   # vae/prior.py

Images are the means of the decoder's distribution (sigmoid(logits) for the Bernoulli),
not samples from it: the usual way to show (and score) a VAE's samples. Grey images come
as (N, H, W), colour ones as (N, H, W, 3).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from scipy.stats import norm
from sklearn.mixture import GaussianMixture

from common.checkpoints import Checkpointer
from common.conditioning import class_count, cycled_labels, label_index, requested_labels
from common.config import parse_settings, precision_setting, setting
from common.data import Splits, load_splits
from common.data_settings import image_shape_of
from common.errors import UserError, first_line, run_cli
from common.files import atomic_write
from common.images import save_image, to_uint8
from common.latent import slerp
from common.plots import image_grid, plt
from common.precision import load_model, use_precision
from common.runs import load_run_config, lock_if_writing_into
from vae.model import VAE, build_vae, encode_means
from vae.prior import check_components, fit_latent_mixture, sample_latent_mixture

MODEL_FILE = "model.keras"
PRIORS = ("normal", "gmm")
CHECKPOINT_DIR = "checkpoints"


def load_vae(run_dir: str | Path, precision: str = "float32") -> VAE:
    """The VAE of a run folder computing in `precision`: its final `model.keras`, else its
    latest checkpoint.

    A missing folder, another program's run, or a checkpoint that does not fit the
    architecture in its config.json is a one-line `UserError`.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir, "vae")
    model_path = run_dir / MODEL_FILE
    if model_path.is_file():
        try:
            model = load_model(model_path, precision)
        except Exception as error:  # zip, h5py and deserialization errors: all a bad file
            reason = first_line(error)
            raise UserError(f"{model_path}: cannot load the model ({reason})") from None
        if not isinstance(model, VAE):
            raise UserError(f"{model_path}: holds a {type(model).__name__}, not a VAE")
        return model
    settings = config["settings"]
    try:
        with use_precision(precision):
            shape = image_shape_of(settings.get("dataset", "mnist"), settings.get("image_size"),
                                   settings.get("channels"))
            n_classes = 0
            if settings.get("conditional"):  # rare: a conditional run killed before model.keras
                n_classes = class_count(load_splits(settings["dataset"], settings.get("data_dir")).y_train)
            model = build_vae(settings["arch"], settings["latent_dim"], settings["hidden_units"],
                              seed=settings.get("seed"), image_shape=shape,
                              likelihood=settings.get("likelihood", "bernoulli"), n_classes=n_classes)
    except (KeyError, TypeError, ValueError, UserError) as error:
        raise UserError(f"{run_dir}/config.json: cannot build the model it describes ({error})") from None
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, model=model)
    if checkpointer.latest is None:
        raise UserError(f"{run_dir}: has neither {MODEL_FILE} nor a checkpoint")
    try:
        # The model alone: the checkpoint's optimizer slots are not needed for sampling.
        checkpointer.checkpoint.restore(checkpointer.latest).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        raise UserError(f"{checkpointer.latest}: checkpoint does not match the architecture in "
                        f"config.json ({first_line(error)})") from None
    return model


def sample_images(model: VAE, n: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
    """n images from the prior: z ~ N(0, I), then E[x|z] (E[x|z, y] for a conditional VAE,
    of the classes `labels`, by default in turn); (n, H, W[, C]) float32 in [0, 1]."""
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    return decode(model, z, labels=labels)


def decode(model: VAE, z: np.ndarray, batch_size: int = 1000, labels: np.ndarray | None = None) -> np.ndarray:
    """Decoder means for latent codes (N, latent_dim) → (N, H, W) grey or (N, H, W, C) float32.
    A conditional VAE decodes with `labels` (N,), by default the classes in turn."""
    if model.n_classes and labels is None:
        labels = cycled_labels(len(z), model.n_classes)
    batches = [keras.ops.convert_to_numpy(model.decode(
                   z[start:start + batch_size],
                   None if labels is None else np.asarray(labels[start:start + batch_size], np.int32)))
               for start in range(0, len(z), batch_size)]
    return squeeze_grey(np.concatenate(batches).astype(np.float32))


def squeeze_grey(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1) → (N, H, W); colour (N, H, W, 3) unchanged."""
    return images[..., 0] if images.shape[-1] == 1 else images


def with_channels(images: np.ndarray) -> np.ndarray:
    """(N, H, W) → (N, H, W, 1); (N, H, W, C) unchanged."""
    return images[..., None] if images.ndim == 3 else images


def interpolate(model: VAE, x_a: np.ndarray, x_b: np.ndarray, steps: int = 10,
                spherical: bool = False) -> np.ndarray:
    """Decode `steps` codes between μ(x_a) and μ(x_b) (both ends included); (steps, H, W[, C])."""
    shape = model.image_shape
    pair = np.stack([np.reshape(x_a, shape), np.reshape(x_b, shape)]).astype(np.float32)
    a, b = encode_means(model, pair)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    codes = slerp(a, b, t) if spherical else (1.0 - t)[:, None] * a + t[:, None] * b
    return decode(model, codes.astype(np.float32))


def reconstruction_grid(model: VAE, images: np.ndarray, columns: int = 10,
                        labels: np.ndarray | None = None) -> np.ndarray:
    """Rows of inputs, each followed by a row of their reconstructions sigmoid(decoder(μ(x)))
    (a conditional VAE's with the images' `labels`)."""
    reconstructions = decode(model, encode_means(model, images, labels=labels), labels=labels)
    rows = []
    for start in range(0, len(images), columns):
        rows += [squeeze_grey(images[start:start + columns]), reconstructions[start:start + columns]]
    return image_grid(np.concatenate(rows), columns)


def factor_correlations(means: np.ndarray, factors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """|Pearson correlation| between every latent mean μ_j(x) and every known factor, over
    the images: {factor: (latent_dim,)}; a constant column gives 0."""
    means = means - means.mean(axis=0)
    result = {}
    for name, values in factors.items():
        values = np.asarray(values, np.float64) - np.mean(values)
        numerator = values @ means
        denominator = np.linalg.norm(values) * np.linalg.norm(means, axis=0)
        result[name] = np.abs(np.divide(numerator, denominator, out=np.zeros_like(numerator),
                                        where=denominator > 0))
    return result


def traversals(model: VAE, image: np.ndarray, dims: list[int], span: float = 2.5,
               steps: int = 9) -> np.ndarray:
    """One row per latent dimension j in `dims`: μ(image) with z_j swept over
    [−span, span], decoded; (len(dims)·steps, H, W[, C])."""
    base = encode_means(model, image[None].astype(np.float32))[0]
    codes = np.repeat(base[None], len(dims) * steps, axis=0)
    for row, dim in enumerate(dims):
        codes[row * steps:(row + 1) * steps, dim] = np.linspace(-span, span, steps)
    return decode(model, codes.astype(np.float32))


def manifold(model: VAE, size: int = 20) -> np.ndarray:
    """The 2-D latent manifold: decoded z on a size×size grid of prior quantiles.

    Grid points are Φ⁻¹ of evenly spaced probabilities (Kingma & Welling 2013, fig. 4),
    so each cell covers equal prior mass. Only for latent_dim == 2.
    """
    quantiles = norm.ppf(np.linspace(0.05, 0.95, size))
    z1, z2 = np.meshgrid(quantiles, quantiles[::-1])  # z2 grows upwards, like a plot
    codes = np.stack([z1.ravel(), z2.ravel()], axis=-1).astype(np.float32)
    return image_grid(decode(model, codes), size, padding=0)


def latent_scatter(means: np.ndarray, labels: np.ndarray, title: str = "") -> plt.Figure:
    """The test set's posterior means μ(x) in 2-D, coloured by digit label."""
    figure, axes = plt.subplots(figsize=(6, 5))
    points = axes.scatter(means[:, 0], means[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6,
                          vmin=-0.5, vmax=9.5)
    figure.colorbar(points, ax=axes, ticks=range(10), label="label")
    axes.set(xlabel="z₁", ylabel="z₂", title=title)
    axes.grid(alpha=0.3)
    return figure


def figure_to_array(figure: plt.Figure) -> np.ndarray:
    """Render a matplotlib figure (and close it) as an (H, W, 3) float array, for TensorBoard."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0


INTERPOLATION = "spherical interpolation between two prior samples"


@dataclass
class VAESampler:
    """A trained VAE behind the protocol the comparison uses for every family.

    `sample(n, seed)` → (n, H, W, C) float32 in [0, 1] (decoder means, as `sample_images`);
    `interpolations(rows)` → (rows·10, H, W, C), each row 10 decoded steps along the great
    circle between two prior codes; `curves(metrics)` → (title, x label, {label: (x, y)}) from
    a schema-2 metrics.json; `info` describes the loaded network.
    """

    model: VAE
    info: dict
    mixture: GaussianMixture | None = None  # --prior gmm: codes from it instead of N(0, I)

    def sample(self, n: int, seed: int) -> np.ndarray:
        if self.mixture is None:
            return with_channels(sample_images(self.model, n, seed))
        return with_channels(decode(self.model, sample_latent_mixture(self.mixture, n, seed)))

    def interpolations(self, rows: int) -> np.ndarray:
        z = np.random.default_rng(1).standard_normal((rows, 2, self.model.latent_dim)).astype(np.float32)
        t = np.linspace(0.0, 1.0, 10, dtype=np.float32)
        walks = [decode(self.model, slerp(a, b, t).astype(np.float32)) for a, b in z]
        return with_channels(np.concatenate(walks))

    def curves(self, metrics: dict) -> tuple[str, str, dict[str, tuple[list, list]]]:
        """The train and test −ELBO per epoch (the history's `train_elbo`, `test_elbo`)."""
        history = metrics.get("history", {})
        epochs = history.get("epoch", [])
        curves = {}
        for key, label in (("train_elbo", "train"), ("test_elbo", "test")):
            points = [(e, -v) for e, v in zip(epochs, history.get(key) or []) if v is not None]
            if points:
                curves[label] = ([e for e, _ in points], [v for _, v in points])
        return "−ELBO (nats per image)", "epoch", curves


def load_sampler(run_dir: str | Path, precision: str = "float32", prior: str = "normal",
                 components: int = 10) -> VAESampler:
    """The run's VAE (see `load_vae`) as a `VAESampler` drawing codes from `prior` (as
    vae.sample's --prior and --components; the mixture is fitted here, once); info: family,
    sampler (decoder) parameters, latent size, prior and what `interpolations` shows."""
    if prior not in PRIORS:
        raise UserError(f"prior: expected one of {', '.join(PRIORS)}, got {prior!r}")
    model = load_vae(run_dir, precision)
    mixture = latent_mixture(model, run_splits(run_dir), components) if prior == "gmm" else None
    return VAESampler(model, {"family": "vae", "sampler_parameters": model.decoder.count_params(),
                              "latent_dim": model.latent_dim, "prior": prior,
                              "interpolation": INTERPOLATION}, mixture)


@dataclass
class SampleSettings:
    run: str | None = setting(None, "run folder of a trained VAE (required)")
    out: str = setting("samples.png", "output: .png (grid) or .npz (array `images`, uint8 "
                                      "(N, H, W) grey or (N, H, W, 3) colour)")
    n: int = setting(64, "number of samples", positive=True)
    seed: int = setting(0, "seed of the latent codes", min=0)
    interpolate: bool = setting(False, "interpolate between two test images instead "
                                       "(rows: linear, spherical)")
    pair: list[int] = setting([0, 1], "indices of the two test images for --interpolate", min=0)
    steps: int = setting(10, "images per interpolation or traversal, ends included", min=2)
    traverse: bool = setting(False, "latent traversals of test image --pair[0] instead: for "
                                    "`shapes` one row per factor (the latent most correlated "
                                    "with it), else the 8 most variable latents")
    prior: str = setting("normal", "where the codes come from: normal, N(0, I); gmm, a Gaussian "
                                   "mixture fitted to the encoded training set (vae/prior.py)",
                         choices=PRIORS)
    components: int = setting(10, "mixture components of --prior gmm", positive=True)
    label: str | None = setting(None, "conditional runs (vae.train --conditional): every sample "
                                      "of this class, an index or a class name (unset: the classes "
                                      "in turn)")
    precision: str = precision_setting()

    def validate(self) -> None:
        if not self.run:
            raise UserError("--run: a run folder is required")
        if Path(self.out).suffix.lower() not in (".png", ".npz"):
            raise UserError(f"--out: {self.out} must end in .png or .npz")
        if len(self.pair) != 2:
            raise UserError(f"--pair: expected two test image indices, got {len(self.pair)}")


def write_output(path: Path, grid: np.ndarray, columns: int, **arrays: np.ndarray) -> None:
    """A PNG of the images `grid`, or an .npz with `arrays` as uint8 (atomic either way)."""
    if path.suffix.lower() == ".npz":
        with atomic_write(path) as handle:
            np.savez_compressed(handle, **{k: to_uint8(v) for k, v in arrays.items()})
    else:
        save_image(path, image_grid(grid, columns))


def write_traversals(settings: SampleSettings, model: VAE, out: Path) -> None:
    """Traversals of one test image along the latents that carry the known factors."""
    splits = run_splits(settings.run)
    means = encode_means(model, splits.x_test)
    if splits.factors:
        correlations = factor_correlations(means, splits.factors["test"])
        rows = [(name, int(np.argmax(c)), float(np.max(c))) for name, c in correlations.items()]
    else:
        order = np.argsort(-np.var(means, axis=0))[:8]
        rows = [("variance", int(j), float(np.var(means[:, j]))) for j in order]
    image = splits.x_test[settings.pair[0]]
    images = traversals(model, image, [dim for _, dim, _ in rows], steps=settings.steps)
    write_output(out, images, settings.steps, traversals=images)
    print(f"wrote {out}: rows " + "; ".join(f"z{dim} ({name} {value:.2f})"
                                             for name, dim, value in rows))


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(SampleSettings, argv, __doc__.splitlines()[0],
                              prog="python -m vae.sample")
    with lock_if_writing_into(settings.run, settings.out):
        write_samples(settings)


def write_samples(settings: SampleSettings) -> None:
    """Write the samples, traversals or interpolations `settings` ask for to --out."""
    model = load_vae(settings.run, settings.precision)
    labels = requested_labels(label_index(settings.label, settings.run), settings.n, model.n_classes,
                              settings.run)
    out = Path(settings.out)
    if model.n_classes and (settings.traverse or settings.interpolate):
        raise UserError("--traverse/--interpolate: not implemented for conditional runs; sample "
                        "them with --label")
    if settings.traverse:
        write_traversals(settings, model, out)
        return
    if settings.interpolate:
        test = run_splits(settings.run).x_test
        if max(settings.pair) >= len(test):
            raise UserError(f"--pair: indices must be below {len(test)}")
        x_a, x_b = test[settings.pair[0]], test[settings.pair[1]]
        linear = interpolate(model, x_a, x_b, settings.steps, spherical=False)
        spherical = interpolate(model, x_a, x_b, settings.steps, spherical=True)
        write_output(out, np.concatenate([linear, spherical]), settings.steps,
                     linear=linear, spherical=spherical)
        print(f"wrote {out}: {settings.steps}-step interpolation between test images "
              f"{settings.pair[0]} and {settings.pair[1]} (rows: linear, spherical)")
        return
    if settings.prior == "gmm":
        codes = mixture_codes(model, run_splits(settings.run), settings.components, settings.n,
                              settings.seed)
        images = decode(model, codes, labels=labels)
    else:
        images = sample_images(model, settings.n, settings.seed, labels)
    write_output(out, images, min(settings.n, 16), images=images)
    print(f"wrote {out}: {settings.n} samples ({settings.prior} prior)")


def run_splits(run_dir: str | Path) -> Splits:
    """The data a VAE run was trained on, at the run's image size and channels."""
    run_settings = load_run_config(run_dir, "vae")["settings"]
    return load_splits(run_settings["dataset"], run_settings.get("data_dir"),
                       image_size=run_settings.get("image_size"),
                       channels=run_settings.get("channels"))


def latent_mixture(model: VAE, train: Splits, components: int, seed: int = 0) -> GaussianMixture:
    """A `components`-component Gaussian mixture fitted to μ(x) of the training images
    (vae/prior.py)."""
    check_components(components, len(train.x_train))  # before the encoding and the fit
    labels = train.y_train if model.n_classes else None  # a conditional VAE's codes of x given y
    return fit_latent_mixture(encode_means(model, train.x_train, labels=labels), components, seed)


def mixture_codes(model: VAE, train: Splits, components: int, n: int, seed: int = 0) -> np.ndarray:
    """n codes from `latent_mixture`, fitted and drawn with `seed`."""
    return sample_latent_mixture(latent_mixture(model, train, components, seed), n, seed)


if __name__ == "__main__":
    run_cli(main)
