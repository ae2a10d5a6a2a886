"""Training throughput of the GAN (mlp, dcgan) next to the keras-io DCGAN architecture.

    python -m experiments.bench.gan --steps 100
    python -m experiments.bench.gan --dataset shapes --image-size 32 --pairs dcgan --width 32

Every network pair trains through the same `GAN.train_step` (Algorithm 1 with `--k`), the
same MNIST pipeline, batch size and Adam settings; after a warm-up epoch (tracing, caches)
one timed epoch of `--steps` iterations gives generator steps per second and images per
second (real images read: k × batch per generator step). The keras-io pair is the MNIST
GAN of keras.io's guide "Customizing what happens in fit()" (also used by its conditional
GAN example), rebuilt here: latent 128, Dense(7·7·128) and two 4×4 stride-2 transposed
convolutions of 128 filters with LeakyReLU, a 7×7 sigmoid convolution; discriminator of
two 3×3 stride-2 convolutions (64, 128) with LeakyReLU, global max pooling and Dense(1).
The keras-io pair takes 28×28×1 only; `--dataset`/`--image-size` time the dcgan (with
`--width`) on other images. Results are printed as a Markdown table and written to `--out`.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import keras

from common.config import parse_settings, precision_setting, setting
from common.data import load_splits
from common.data_settings import check_dataset, check_image_options
from common.errors import UserError, run_cli
from common.files import write_json
from common.runs import library_versions, set_seed
from experiments.bench.timing import EpochTimer
from gan.model import GAN, build_discriminator, build_generator
from gan.train import Settings as TrainSettings
from gan.trainer import make_training_data

PAIRS = ("mlp", "dcgan", "keras-io")


def keras_io_generator(latent_dim: int = 128) -> keras.Model:
    return keras.Sequential([
        keras.Input((latent_dim,)),
        keras.layers.Dense(7 * 7 * 128), keras.layers.LeakyReLU(0.2),
        keras.layers.Reshape((7, 7, 128)),
        keras.layers.Conv2DTranspose(128, 4, strides=2, padding="same"), keras.layers.LeakyReLU(0.2),
        keras.layers.Conv2DTranspose(128, 4, strides=2, padding="same"), keras.layers.LeakyReLU(0.2),
        keras.layers.Conv2D(1, 7, padding="same", activation="sigmoid", name="to_image"),
    ], name="keras_io_generator")


def keras_io_discriminator() -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(64, 3, strides=2, padding="same"), keras.layers.LeakyReLU(0.2),
        keras.layers.Conv2D(128, 3, strides=2, padding="same"), keras.layers.LeakyReLU(0.2),
        keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(1),
    ], name="keras_io_discriminator")


@dataclass
class BenchSettings:
    steps: int = setting(100, "timed generator steps per network pair", positive=True)
    batch_size: int = setting(64, "images per minibatch", positive=True)
    k: int = setting(1, "discriminator steps per generator step", positive=True)
    pairs: list[str] = setting(list(PAIRS), "network pairs to time", choices=PAIRS)
    precision: str = precision_setting()
    data_dir: str | None = setting(None, "folder holding mnist.npz (default: $DATA_DIR)")
    out: str = setting("experiments/results/gan/bench.json", "where to write the results")
    seed: int = setting(0, "seed", min=0)
    dataset: str = setting("mnist", "dataset (docs/datasets.md)")
    image_size: int | None = setting(None, "resize to this square size (a multiple of 4)")
    width: int = setting(64, "dcgan width (filters of D's first layer)", positive=True)

    def validate(self) -> None:
        check_dataset(self.dataset)
        check_image_options(self.image_size, None)


def build_pair(name: str, image_shape: tuple[int, int, int] = (28, 28, 1),
               width: int = 64) -> tuple[keras.Model, keras.Model]:
    if name == "keras-io":
        if tuple(image_shape) != (28, 28, 1):
            raise UserError(f"--pairs keras-io: takes 28×28×1 images only, not {image_shape}")
        return keras_io_generator(), keras_io_discriminator()
    return (build_generator(name, image_shape=image_shape, width=width),
            build_discriminator(name, image_shape, width))


def main(argv: list[str] | None = None) -> dict:
    settings = parse_settings(BenchSettings, argv, __doc__.splitlines()[0],
                              prog="python -m experiments.bench.gan")
    keras.mixed_precision.set_global_policy(settings.precision)
    images = load_splits(settings.dataset, settings.data_dir, image_size=settings.image_size).x_train
    results = []
    for name in settings.pairs:
        set_seed(settings.seed)
        generator, discriminator = build_pair(name, images.shape[1:], settings.width)
        activation = "sigmoid" if name == "keras-io" else "tanh"
        data = make_training_data(images, TrainSettings(batch_size=settings.batch_size, k=settings.k,
                                                        seed=settings.seed, output_activation=activation))
        model = GAN(generator, discriminator, k=settings.k)
        model.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        timer = EpochTimer()
        model.fit(data, epochs=2, steps_per_epoch=settings.steps, callbacks=[timer], verbose=0,
                  shuffle=False)
        steps_per_second = settings.steps / timer.seconds[-1]
        results.append({"pair": name, "generator_parameters": generator.count_params(),
                        "discriminator_parameters": discriminator.count_params(),
                        "generator_steps_per_second": steps_per_second,
                        "images_per_second": steps_per_second * settings.k * settings.batch_size})
    report = {"settings": vars(settings), "machine": {"platform": platform.platform(),
                                                      "cpus": os.cpu_count(),
                                                      "load_average": os.getloadavg()},
              "versions": library_versions(), "results": results}
    write_json(settings.out, report)
    print(f"| pair | G params | D params | G steps/s | images/s |  (batch {settings.batch_size}, "
          f"k={settings.k}, {settings.steps} timed steps)")
    print("|---|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['pair']} | {row['generator_parameters']:,} | {row['discriminator_parameters']:,} | "
              f"{row['generator_steps_per_second']:.1f} | {row['images_per_second']:.0f} |")
    return report


if __name__ == "__main__":
    run_cli(main)
