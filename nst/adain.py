"""Arbitrary style transfer with AdaIN: any style image, one forward pass.

    python -m nst.adain train --content-dir photos/ --style-dir paintings/ --steps 5000 --run-dir DIR
    python -m nst.adain stylize --model DIR/model.keras --content photo.jpg --style painting.jpg \\
        --output out.jpg [--alpha 0.6] [--style a.jpg b.jpg --weights 0.5 0.5] [--mask m.png] \\
        [--preserve-color]

Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization" (ICCV 2017). The network (`nst.adain_net`): a frozen VGG19 encoder f up to
relu4_1, AdaIN, a decoder g trained on random crops of a folder of photos paired with
random crops of a folder of paintings to minimise

    L = L_c + λ·L_s,   L_c = ‖f(g(t)) − t‖²,   L_s = Σ_i ‖μ(φ_i(g(t))) − μ(φ_i(s))‖² + ‖σ(…) − σ(…)‖²

with t = AdaIN(f(c), f(s)) and λ = 10 (`nst.losses`). At test time the controls of the
paper's section 7 work on t before decoding:
- content–style trade-off: g(α·t + (1 − α)·f(c));
- style interpolation: g(Σ_k w_k·AdaIN(f(c), f(s_k))) with weights summing to 1;
- spatial control: AdaIN per mask region, each region normalised by its own statistics;
- colour preservation: the style image is first recoloured to the content's colour mean and
  covariance (`nst.color.match_color_histogram`).
The paper trained on MS-COCO (80k photos) × WikiArt (80k paintings); see docs/nst.md for
what a few dozen images give.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.checkpoints import save_model
from common.config import TrainingSettings, parse_command, precision_setting, progress_verbosity, setting
from common.errors import UserError, run_cli
from common.images import load_image, resize, resize_long_side
from common.training import TrainingRun
from nst import losses
from nst.adain_net import AdaINStyleTransfer, adaptive_instance_norm
from nst.color import match_color_histogram
from nst.feedforward import (
    crop_dataset,
    list_images,
    load_content_photos,
    load_images_to_stylize,
    load_network,
    report_stylized,
    same_shape_batches,
    save_outputs,
    stylize_inputs,
)
from nst.layers import vgg19_weights

MIN_SIDE = 16  # smallest image side nst.adain stylize takes
PANEL_SIZE = 4  # TensorBoard panel rows per kind of style (seen in training / never seen)


@dataclass
class TrainSettings(TrainingSettings):
    content_dir: str | None = setting(None, "folder of content photos (required)")
    style_dir: str | None = setting(None, "folder of style images (required)")
    unseen_styles: list[str] = setting([], "style images kept out of training, shown with the "
                                           "training styles in TensorBoard's panel")
    steps: int = setting(5000, "training steps", positive=True)
    image_size: int = setting(256, "side of the square random crops", min=16)
    batch_size: int = setting(8, "(content, style) pairs per step", positive=True)
    lr: float = setting(1e-4, "Adam learning rate", positive=True)
    lr_decay: float = setting(5e-5, "learning rate lr/(1 + lr_decay·step), as the paper's code",
                              min=0.0)
    style_weight: float = setting(10.0, "lambda, weight of the style loss", min=0.0)
    log_every: int = setting(100, "steps between logs, checkpoints and panel images",
                             positive=True)
    vgg_weights: str | None = setting(None, "VGG19 no-top weights file (default: $VGG19_WEIGHTS, "
                                      "else Keras' 'imagenet' download)")

    def validate(self) -> None:
        super().validate()
        if self.image_size % 8:
            raise UserError(f"--image-size {self.image_size}: must be a multiple of 8 (relu4_1 "
                            "is 1/8 of the crop and the decoder doubles it three times)")
        if self.content_dir is None or self.style_dir is None:
            raise UserError("train needs --content-dir DIR and --style-dir DIR")
        trained = {path.resolve() for path in list_images(self.style_dir)}
        for style in self.unseen_styles:
            if Path(style).resolve() in trained:
                raise UserError(f"--unseen-styles {style}: is in --style-dir, so it is seen")


@dataclass
class StylizeSettings:
    model: str | None = setting(None, "a trained AdaIN model (.keras) (required)")
    content: list[str] | None = setting(None, "content image(s) or a folder of them (required)")
    style: list[str] | None = setting(None, "style image(s); several are mixed by --weights "
                                            "(required)")
    output: str | None = setting(None, "output file for one content image, else a folder "
                                       "(required)")
    weights: list[float] | None = setting(None, "one weight per style, normalised to sum to 1 "
                                                "(default: equal)", min=0.0)
    alpha: float = setting(1.0, "content-style trade-off: 0 reconstructs the content, 1 is "
                                "full style", min=0.0, max=1.0)
    mask: str | None = setting(None, "image whose white part takes the first style and black "
                                     "part the second (or stays unstylised with one style)")
    preserve_color: bool = setting(False, "keep the content's colours (the style is recoloured "
                                          "to them first)")
    size: int | None = setting(None, "resize contents to this long side first (default: as is)",
                               min=16)
    style_size: int = setting(512, "long side of the style images", min=16)
    batch_size: int = setting(4, "contents per batch (same-size contents are batched together)",
                              positive=True)
    quiet: bool = setting(False, "no progress bar")
    precision: str = precision_setting()

    def validate(self) -> None:
        if not (self.model and self.content and self.style and self.output):
            raise UserError("stylize needs --model FILE.keras, --content IMG|DIR, --style IMG "
                            "and --output PATH")
        if self.weights is not None and len(self.weights) != len(self.style):
            raise UserError(f"--weights: {len(self.weights)} weight(s) for {len(self.style)} "
                            "style(s)")
        if self.weights is not None and sum(self.weights) == 0:
            raise UserError("--weights: the weights are all zero")
        if self.mask is not None and (len(self.style) > 2 or self.weights is not None):
            raise UserError("--mask takes one or two --style images and no --weights (each "
                            "region gets one style)")


class AdaINTrainer(keras.Model):
    """Trains the decoder of `net` with L = L_c + λ·L_s on (content, style) batches.

    Only the decoder is trained; the encoder is frozen and the saved model is `net`.
    """

    def __init__(self, net: AdaINStyleTransfer, style_weight: float):
        super().__init__()
        self.net, self.style_weight = net, style_weight
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "content", "style")}

    def call(self, inputs):
        return self.net(inputs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        content, style = data
        content_features = self.net.encode(content)[-1]
        style_features = self.net.encode(style)
        target = self.net.adain(content_features, style_features[-1])
        with tf.GradientTape() as tape:
            generated = self.net.encode(self.net.decode(target, training=True))
            content_loss = losses.adain_content_loss(target, generated[-1])
            style_loss = losses.adain_style_loss(style_features, generated)
            loss = content_loss + self.style_weight * style_loss
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            objective = self.optimizer.scale_loss(loss / replicas)
        variables = self.net.decoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(objective, variables), variables))
        for name, value in (("loss", loss), ("content", content_loss), ("style", style_loss)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def square(image: np.ndarray, size: int) -> np.ndarray:
    """The centred square of `image`, resized to size × size."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return resize(image[top:top + side, left:left + side], size, size)


class ShowTriples(keras.callbacks.Callback):
    """A fixed panel in TensorBoard after every chunk: rows of (content, style, result), the
    first rows with training styles, the rest with styles never seen in training."""

    def __init__(self, logger, contents: np.ndarray, styles: np.ndarray, log_every: int):
        super().__init__()
        self.logger, self.log_every = logger, log_every
        self.contents, self.styles = contents, styles

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        results = np.clip(self.model.net((self.contents, self.styles)).numpy(), 0.0, 1.0)
        rows = np.stack([self.contents, self.styles, results], axis=1).reshape(-1, *results.shape[1:])
        self.logger.images("panel/content_style_result", rows, (epoch + 1) * self.log_every,
                           columns=3)


def panel(photos: list[np.ndarray], styles: list[np.ndarray], unseen: list[np.ndarray],
          size: int) -> tuple[np.ndarray, np.ndarray]:
    """(contents, styles) of the TensorBoard panel: training styles, then unseen ones."""
    chosen = styles[:PANEL_SIZE] + unseen[:PANEL_SIZE]
    contents = [square(photos[i % len(photos)], size) for i in range(len(chosen))]
    return np.stack(contents), np.stack([square(style, size) for style in chosen])


def train(settings: TrainSettings) -> Path:
    """Train an AdaIN decoder; returns the run folder (holding model.keras).

    One Keras "epoch" is --log-every steps: a chunk after which the losses are logged, the
    panel is drawn and a checkpoint is written.
    """
    size = settings.image_size
    photos = load_content_photos(settings.content_dir, size)
    styles = load_content_photos(settings.style_dir, size)
    unseen = [load_image(path) for path in settings.unseen_styles]
    chunks = -(-settings.steps // settings.log_every)
    with TrainingRun("adain", settings, epochs=chunks) as run:  # no TF op before it
        with run.strategy.scope():
            net = AdaINStyleTransfer.from_vgg19(vgg19_weights(settings.vgg_weights))
            trainer = AdaINTrainer(net, settings.style_weight)
            schedule = keras.optimizers.schedules.InverseTimeDecay(settings.lr, 1, settings.lr_decay)
            trainer.compile(optimizer=run.optimizer(keras.optimizers.Adam(schedule)))
            blank = np.zeros((1, size, size, 3), np.float32)
            trainer((blank, blank))  # build the weights before restoring
            trainer.optimizer.build(net.decoder.trainable_variables)
        parameters = net.decoder.count_params()
        run.start({"decoder": net.decoder, "optimizer": trainer.optimizer},
                  steps=trainer.optimizer.iterations, parameters=parameters,
                  sampler_parameters=parameters, hparams=["train_loss"])
        data = tf.data.Dataset.zip((crop_dataset(photos, size, settings.batch_size, settings.seed),
                                    crop_dataset(styles, size, settings.batch_size, settings.seed + 1)))
        contents, panel_styles = panel(photos, styles, unseen, size)
        run.fit(trainer, data, settings.log_every,
                callbacks=[ShowTriples(run.logger, contents, panel_styles, settings.log_every)])
        save_model(net, run.run_dir / "model.keras")
        run.finish(model=str(run.run_dir / "model.keras"))
    return run.run_dir


def load_adain(path: str, precision: str = "float32") -> AdaINStyleTransfer:
    """A saved AdaIN model computing in `precision`; anything else is a one-line `UserError`."""
    return load_network(path, AdaINStyleTransfer, "an AdaIN style transfer model",
                        "python -m nst.adain train", precision)


def style_statistics(net: AdaINStyleTransfer, styles: list[np.ndarray],
                     contents: np.ndarray | None = None) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """(μ, σ) of each style's relu4_1 features, (1, 1, 1, C); with `contents`, each style is
    first recoloured to each content image (colour preservation), giving (N, 1, 1, C)."""
    statistics = []
    for style in styles:
        if contents is None:
            statistics.append(losses.channel_mean_std(net.encode(style[None])[-1]))
            continue
        per_content = [losses.channel_mean_std(net.encode(match_color_histogram(style, c)[None])[-1])
                       for c in contents]
        statistics.append(tuple(tf.concat(parts, axis=0) for parts in zip(*per_content)))
    return statistics


def masked_adain(content: tf.Tensor, regions: list[tf.Tensor],
                 statistics: list[tuple[tf.Tensor, tf.Tensor] | None]) -> tf.Tensor:
    """Σ_r m_r·AdaIN_r(x): each region r (a 0/1 map (1, h, w, 1)) normalised by its own μ and σ
    and given its style's; a region without style (None) keeps the content features."""
    content = tf.cast(content, tf.float32)
    result = tf.zeros_like(content)
    for region, stats in zip(regions, statistics):
        if stats is None:
            result += region * content
            continue
        count = tf.maximum(tf.reduce_sum(region, axis=[1, 2], keepdims=True), 1.0)
        mean = tf.reduce_sum(region * content, axis=[1, 2], keepdims=True) / count
        variance = tf.reduce_sum(region * tf.square(content - mean), axis=[1, 2], keepdims=True) / count
        result += region * ((content - mean) / tf.sqrt(variance + 1e-5) * stats[1] + stats[0])
    return result


def mask_regions(mask: np.ndarray, height: int, width: int) -> list[tf.Tensor]:
    """A mask image → [white, black] 0/1 maps at the feature size (threshold 0.5)."""
    white = (resize(mask, height, width).mean(axis=-1) >= 0.5).astype(np.float32)[None, ..., None]
    return [tf.constant(white), tf.constant(1.0 - white)]


def stylize_batch(net: AdaINStyleTransfer, contents: np.ndarray, statistics: list,
                  weights: list[float], alpha: float, mask: np.ndarray | None) -> np.ndarray:
    """g(α·t + (1 − α)·f(c)) with t the weighted AdaIN targets, or the masked one.

    Contents are reflect-padded to a multiple of 8 (relu4_1 is 1/8 of the image) and the
    result cropped back, so it has the content's size.
    """
    height, width = contents.shape[1:3]
    contents = np.pad(contents, [(0, 0), (0, -height % 8), (0, -width % 8), (0, 0)], mode="reflect")
    features = tf.cast(net.encode(contents)[-1], tf.float32)
    if mask is None:
        target = tf.add_n([weight * adaptive_instance_norm(features, mean, std)
                           for weight, (mean, std) in zip(weights, statistics)])
    else:
        regions = mask_regions(mask, features.shape[1], features.shape[2])
        target = masked_adain(features, regions, [*statistics, None][:2])
    target = alpha * target + (1.0 - alpha) * features
    return np.clip(np.asarray(net.decode(target), np.float32)[:, :height, :width], 0.0, 1.0)


def stylize(settings: StylizeSettings) -> dict[str, float]:
    """Stylise every content image, batching those of the same size; returns timing figures."""
    inputs, single = stylize_inputs(settings.content, settings.output)
    images = load_images_to_stylize(inputs, settings.size)
    styles = [resize_long_side(load_image(path), settings.style_size) for path in settings.style]
    for path, image in [*zip(inputs, images), *zip(settings.style, styles)]:
        if min(image.shape[:2]) < MIN_SIDE:  # relu4_1 is 1/8 of it; reflection needs 2 pixels
            raise UserError(f"{path}: {image.shape[1]}x{image.shape[0]} is too small for AdaIN "
                            f"(at least {MIN_SIDE} pixels a side)")
    mask = load_image(settings.mask) if settings.mask else None
    weights = np.asarray(settings.weights or [1.0] * len(styles), np.float64)
    weights = list(weights / weights.sum())
    net = load_adain(settings.model, settings.precision)
    shared = None if settings.preserve_color else style_statistics(net, styles)
    progbar = keras.utils.Progbar(len(images), verbose=progress_verbosity(settings.quiet))
    results: list[np.ndarray | None] = [None] * len(images)
    net((images[0][None, :32, :32], styles[0][None, :32, :32]))  # warm up before timing
    started = time.perf_counter()
    for batch in same_shape_batches(images, settings.batch_size):
        contents = np.stack([images[i] for i in batch])
        statistics = shared or style_statistics(net, styles, contents)
        stylised = stylize_batch(net, contents, statistics, weights, settings.alpha, mask)
        for i, image in zip(batch, stylised):
            results[i] = image
        progbar.add(len(batch))
    seconds = time.perf_counter() - started
    save_outputs(inputs, results, settings.output, single)
    return {"images": len(images), "seconds": seconds, "images_per_second": len(images) / seconds}


def main(argv: list[str] | None = None) -> None:
    command, settings = parse_command(argv, "python -m nst.adain", {
        "train": (TrainSettings, "Train an AdaIN style transfer decoder."),
        "stylize": (StylizeSettings, "Stylise images with any style image.")})
    if command == "train":
        print(f"trained {train(settings) / 'model.keras'}")
    else:
        report_stylized(stylize(settings), settings.output)


if __name__ == "__main__":
    run_cli(main)
