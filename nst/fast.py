"""Fast (feed-forward) style transfer: train one network per style, then stylise in milliseconds.

    python -m nst.fast train --style painting.jpg --content-dir photos/ --steps 2000 --run-dir DIR
    python -m nst.fast stylize --model DIR/model.keras --input photo.jpg --output out.jpg
    python -m nst.fast export --model DIR/model.keras --output exported/   # a SavedModel
    python -m nst.fast export --model DIR/model.keras --format tflite --size 512 512 --output s.tflite

Johnson, Alahi & Fei-Fei (ECCV 2016): a transformation network (`nst.transform`) is trained
on random crops of many photos to minimise the same perceptual loss that `nst.run`
minimises per image: α·J_content(photo, output) + β·J_style(style, output) + γ·TV(output),
on the same frozen VGG19 features (`nst.model`, `nst.losses`). A good model needs a large,
varied set of photos (COCO train2014's 83k is what people use); a few photos give a model
that has learnt the style's palette and strokes but generalises less well.
"""

from __future__ import annotations

import os
import tempfile
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
from nst.feedforward import (
    crop_dataset,
    finish,
    load_content_photos,
    load_images_to_stylize,
    load_network,
    report_stylized,
    same_shape_batches,
    save_outputs,
    stylize_inputs,
)
from nst.layers import layer_index, parse_layer_weights, vgg19_weights
from nst.model import compute_targets, feature_extractor, load_vgg19
from nst.transform import TransformNet

DEFAULT_STYLE_LAYERS = ["block1_conv1:0.2", "block2_conv1:0.2", "block3_conv1:0.2",
                        "block4_conv1:0.2", "block5_conv1:0.2"]


@dataclass
class TrainSettings(TrainingSettings):
    style: str | None = setting(None, "the style image (required)")
    content_dir: str | None = setting(None, "folder of content photos (required)")
    steps: int = setting(2000, "training steps", positive=True)
    image_size: int = setting(256, "side of the square random crops", min=16)
    batch_size: int = setting(4, "crops per step", positive=True)
    lr: float = setting(1e-3, "Adam learning rate", positive=True)
    content_layer: str = setting("block3_conv3", "VGG19 layer of the content loss")
    style_layers: list[str] = setting(DEFAULT_STYLE_LAYERS, "style layers as name:weight")
    content_weight: float = setting(1.0, "alpha, weight of the content loss", min=0.0)
    style_weight: float = setting(1e-5, "beta, weight of the style loss", min=0.0)
    tv_weight: float = setting(1.0, "gamma, weight of the total variation loss", min=0.0)
    style_size: int = setting(256, "long side of the style image", min=16)
    log_every: int = setting(100, "steps between logs, checkpoints and validation images",
                             positive=True)
    vgg_weights: str | None = setting(None, "VGG19 no-top weights file (default: $VGG19_WEIGHTS, "
                                      "else Keras' 'imagenet' download)")

    def validate(self) -> None:
        super().validate()
        if self.style is None or self.content_dir is None:
            raise UserError("train needs --style IMG and --content-dir DIR")
        layer_index(self.content_layer)
        parse_layer_weights(self.style_layers, "--style-layers")


@dataclass
class StylizeSettings:
    model: str | None = setting(None, "a trained transformation network (.keras) (required)")
    input: list[str] | None = setting(None, "image(s) or a folder of images (required)")
    output: str | None = setting(None, "output file for one image, else a folder (required)")
    size: int | None = setting(None, "resize inputs to this long side first (default: as is)",
                               min=4)
    batch_size: int = setting(4, "images per batch (same-size images are batched together)",
                              positive=True)
    preserve_color: bool = setting(False, "keep each input's colours (the stylised luminance "
                                   "with the input's chrominance)")
    strength: float = setting(1.0, "blend with the input: 1 = fully stylised, 0 = the input",
                              min=0.0, max=1.0)
    quiet: bool = setting(False, "no progress bar")
    precision: str = precision_setting()

    def validate(self) -> None:
        if not (self.model and self.input and self.output):
            raise UserError("stylize needs --model FILE.keras, --input IMG|DIR and --output PATH")


EXPORT_FORMATS = ("saved_model", "tflite")


@dataclass
class ExportSettings:
    model: str | None = setting(None, "a trained transformation network (.keras) (required)")
    format: str = setting("saved_model", "saved_model: a TensorFlow SavedModel folder with the "
                          "endpoint 'serve', (N, H, W, 3) RGB in [0, 1] of any size; tflite: a "
                          "TensorFlow Lite file for inputs of --size", choices=EXPORT_FORMATS)
    size: list[int] | None = setting(None, "tflite: the input's HEIGHT WIDTH (the file takes any "
                                     "batch size but this one image size)", min=4)
    output: str | None = setting(None, "the folder (saved_model) or file (tflite) to write "
                                 "(required)")

    def validate(self) -> None:
        if not (self.model and self.output):
            raise UserError("export needs --model FILE.keras and --output PATH")
        if Path(self.output).exists():
            raise UserError(f"--output {self.output}: already exists")
        # A TFLite file with a free image size needs Flex (TF Select) ops for the convolutions
        # after the dynamic padding, which the stock TFLite runtime lacks: see docs/nst.md.
        if self.format == "tflite" and (self.size is None or len(self.size) != 2):
            raise UserError("--format tflite needs --size HEIGHT WIDTH (the input's image size)")
        if self.format == "saved_model" and self.size is not None:
            raise UserError("--size is for --format tflite; a SavedModel takes any size")


class PerceptualLossTrainer(keras.Model):
    """Trains `transform` so VGG19 sees the photo's content in the style's textures.

    loss = α·J_content(photo, output) + β·J_style(style Grams, output) + γ·TV(output), on the
    frozen `extractor`'s features; J_style is computed per image (Grams are per image) and
    averaged over the batch. Only the transformation network is trained and saved.
    """

    def __init__(self, extractor: keras.Model, style_grams: dict, layers: dict[str, float],
                 settings: TrainSettings):
        super().__init__()
        self.extractor, self.style_grams, self.style_layers = extractor, style_grams, layers
        self.settings = settings
        self.transform = TransformNet()
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "content", "style", "tv")}

    def call(self, images):
        return self.transform(images)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def perceptual_loss(self, photos, outputs) -> dict[str, tf.Tensor]:
        settings, vgg_in = self.settings, keras.applications.vgg19.preprocess_input
        wanted = self.extractor(vgg_in(photos * 255.0), training=False)
        got = self.extractor(vgg_in(outputs * 255.0), training=False)
        content = losses.content_loss(tf.stop_gradient(wanted[settings.content_layer]),
                                      got[settings.content_layer])
        # This replica's share of --batch-size (its static shape is lost in sharding).
        batch = settings.batch_size // tf.distribute.get_strategy().num_replicas_in_sync
        style = tf.add_n([losses.style_loss(self.style_grams, {n: got[n][i:i + 1] for n in self.style_layers},
                                            self.style_layers)[0] for i in range(batch)]) / batch
        tv = losses.total_variation_loss(outputs * 255.0)
        total = losses.total_loss(content, style, tv, settings.content_weight,
                                  settings.style_weight, settings.tv_weight)
        return {"loss": total, "content": content, "style": style, "tv": tv}

    def train_step(self, photos):
        with tf.GradientTape() as tape:
            terms = self.perceptual_loss(photos, self.transform(photos, training=True))
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            objective = self.optimizer.scale_loss(terms["loss"] / replicas)
        variables = self.transform.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(objective, variables), variables))
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


class ShowValidation(keras.callbacks.Callback):
    """The validation photos and their stylisations in TensorBoard after every chunk."""

    def __init__(self, logger, photos: np.ndarray, log_every: int):
        super().__init__()
        self.logger, self.photos, self.log_every = logger, photos, log_every

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stylised = self.model.transform(self.photos).numpy()
        self.logger.images("validation", np.concatenate([self.photos, stylised]),
                           (epoch + 1) * self.log_every, columns=len(self.photos))


def build_trainer(settings: TrainSettings, style: np.ndarray, run: TrainingRun) -> PerceptualLossTrainer:
    """The compiled trainer (VGG19 extractor, style Gram targets, TransformNet, Adam)."""
    layers = parse_layer_weights(settings.style_layers, "--style-layers")
    extractor = feature_extractor(load_vgg19(vgg19_weights(settings.vgg_weights)),
                                  [settings.content_layer, *layers])
    crop_shape = (1, settings.image_size, settings.image_size, 3)
    style_grams = compute_targets(extractor, crop_shape, None, None, [style], [1.0],
                                  layers).style_grams
    trainer = PerceptualLossTrainer(extractor, style_grams, layers, settings)
    trainer.compile(optimizer=run.optimizer(keras.optimizers.Adam(settings.lr)))
    size = settings.image_size
    trainer(np.zeros((1, size, size, 3), np.float32))  # build the weights before restoring
    trainer.optimizer.build(trainer.transform.trainable_variables)
    return trainer


def train(settings: TrainSettings) -> Path:
    """Train a transformation network; returns the run folder (holding model.keras).

    One Keras "epoch" is --log-every steps: a chunk after which the losses are logged and
    a checkpoint is written.
    """
    style = resize_long_side(load_image(settings.style), settings.style_size)
    photos = load_content_photos(settings.content_dir, settings.image_size)
    size = settings.image_size
    chunks = -(-settings.steps // settings.log_every)
    with TrainingRun("fast", settings, epochs=chunks) as run:  # no TF op before it
        with run.strategy.scope():
            trainer = build_trainer(settings, style, run)
        run.start({"model": trainer.transform, "optimizer": trainer.optimizer},
                  steps=trainer.optimizer.iterations, parameters=trainer.transform.count_params(),
                  sampler_parameters=trainer.transform.count_params(), hparams=["train_loss"])
        run.logger.image("inputs/style", style, 0)
        validation = np.stack([resize(p[:min(p.shape[:2]), :min(p.shape[:2])], size, size)
                               for p in photos[:4]])
        run.fit(trainer, crop_dataset(photos, size, settings.batch_size, settings.seed),
                settings.log_every, callbacks=[ShowValidation(run.logger, validation,
                                                              settings.log_every)])
        save_model(trainer.transform, run.run_dir / "model.keras")
        run.finish(model=str(run.run_dir / "model.keras"))
    return run.run_dir


def load_transform_net(path: str, precision: str = "float32") -> TransformNet:
    """A saved TransformNet computing in `precision`; anything else is a one-line `UserError`."""
    return load_network(path, TransformNet, "a fast style transfer network",
                        "python -m nst.fast train", precision)


def stylize(settings: StylizeSettings) -> dict[str, float]:
    """Stylise every input, batching images of the same size; returns timing figures."""
    inputs, single = stylize_inputs(settings.input, settings.output)
    images = load_images_to_stylize(inputs, settings.size)
    model = load_transform_net(settings.model, settings.precision)
    progbar = keras.utils.Progbar(len(images), verbose=progress_verbosity(settings.quiet))
    results: list[np.ndarray | None] = [None] * len(images)
    model(images[0][None, :8, :8])  # build/trace once before timing
    started = time.perf_counter()
    for batch in same_shape_batches(images, settings.batch_size):
        stylised = np.asarray(model(np.stack([images[i] for i in batch]), training=False), np.float32)
        for i, image in zip(batch, stylised):
            results[i] = image
        progbar.add(len(batch))
    seconds = time.perf_counter() - started
    results = [finish(image, content, settings.preserve_color, settings.strength)
               for image, content in zip(results, images)]
    save_outputs(inputs, results, settings.output, single)
    return {"images": len(images), "seconds": seconds, "images_per_second": len(images) / seconds}


def export(settings: ExportSettings) -> Path:
    """Write the network as a SavedModel (any image size) or a TFLite file (images of --size),
    both taking (N, H, W, 3) RGB in [0, 1]; the output appears only when complete (written
    beside it, then renamed)."""
    model = load_transform_net(settings.model)
    output = Path(settings.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    height, width = settings.size or (None, None)
    signature = [keras.InputSpec(shape=(None, height, width, 3), dtype="float32")]
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch:
        tflite = settings.format == "tflite"
        written = Path(scratch) / ("model.tflite" if tflite else "saved_model")
        model.export(str(written), format="litert" if tflite else "tf_saved_model",
                     verbose=False, input_signature=signature)
        os.replace(written, output)
    return output


def main(argv: list[str] | None = None) -> None:
    command, settings = parse_command(argv, "python -m nst.fast", {
        "train": (TrainSettings, "Train a fast style transfer network."),
        "stylize": (StylizeSettings, "Stylise images with a trained network."),
        "export": (ExportSettings, "Export a trained network for serving.")})
    if command == "train":
        print(f"trained {train(settings) / 'model.keras'}")
    elif command == "export":
        print(f"exported {export(settings)} ({settings.format})")
    else:
        report_stylized(stylize(settings), settings.output)


if __name__ == "__main__":
    run_cli(main)
