"""One training step of the conv VAE and the DCGAN on tiny CIFAR-10 files and an image folder,
and the one-line errors of the training programs on bad image data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from common import colour_datasets
from gan.sample import load_generator
from gan.sample import sample_images as gan_samples
from gan.train import Settings as GANSettings
from gan.train import train as train_gan
from tests.helpers import TINY_COUNTS, assert_one_line_error, write_cifar, write_folder
from vae.sample import load_vae
from vae.sample import sample_images as vae_samples
from vae.train import Settings as VAESettings
from vae.train import train as train_vae

pytestmark = pytest.mark.slow  # trains models or runs whole programs


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """{"cifar10": (dataset, data_dir, image shape), "folder": …}: tiny CIFAR files (counts
    and MD5 table patched) and a folder with a corrupt file, a grey PNG, an RGBA PNG and a
    non-image."""
    root = tmp_path_factory.mktemp("colour")
    write_cifar(root / "cifar")
    write_folder(root / "photos")
    patch = pytest.MonkeyPatch()
    patch.setattr(colour_datasets, "CIFAR_COUNTS", TINY_COUNTS)
    patch.setattr(colour_datasets, "CIFAR_MD5", {})
    yield {"cifar10": ("cifar10", str(root / "cifar"), (32, 32, 3)),
           "folder": (f"folder:{root / 'photos'}", None, (16, 16, 3))}
    patch.undo()


@pytest.mark.parametrize("source", ["cifar10", "folder"])
def test_one_step_of_the_conv_vae(sources, source, tmp_path):
    dataset, data_dir, shape = sources[source]
    image_size = shape[0] if source == "folder" else None
    run = train_vae(VAESettings(run_dir=str(tmp_path / "vae"), dataset=dataset, data_dir=data_dir,
                                image_size=image_size, arch="conv", latent_dim=4,
                                likelihood="logistic", epochs=1, steps_per_epoch=1, batch_size=2,
                                nll_k=2, nll_k_train=2, nll_examples=2, quiet=True, eval=False))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 1 and np.isfinite(metrics["test_nll"])
    dims = int(np.prod(shape))
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_nll"] / (dims * np.log(2)))
    assert vae_samples(load_vae(run), 3).shape == (3, *shape)


@pytest.mark.parametrize("source", ["cifar10", "folder"])
def test_one_step_of_the_dcgan(sources, source, tmp_path):
    dataset, data_dir, shape = sources[source]
    image_size = shape[0] if source == "folder" else None
    run = train_gan(GANSettings(run_dir=str(tmp_path / "gan"), dataset=dataset, data_dir=data_dir,
                                image_size=image_size, epochs=1, steps_per_epoch=1, batch_size=2,
                                width=8, quiet=True, eval=False))
    assert json.loads((run / "metrics.json").read_text())["steps"] == 1
    images = gan_samples(load_generator(run), 3)
    assert images.shape == (3, *shape) and 0.0 <= images.min() and images.max() <= 1.0


def test_colour_samples_are_written_as_rgb_arrays(sources, tmp_path, cli):
    dataset, _, shape = sources["folder"]
    run = train_gan(GANSettings(run_dir=str(tmp_path / "gan"), dataset=dataset, image_size=16,
                                epochs=1, steps_per_epoch=1, batch_size=2, width=8, quiet=True,
                                eval=False))
    vae_run = train_vae(VAESettings(run_dir=str(tmp_path / "vae"), dataset=dataset, image_size=16,
                                    latent_dim=4, epochs=1, steps_per_epoch=1, batch_size=2,
                                    nll_k=2, nll_k_train=0, quiet=True, eval=False))
    for program, run_dir in (("gan.sample", run), ("vae.sample", vae_run)):
        result = cli(program, "--run", str(run_dir), "--n", "5", "--out", str(tmp_path / "s.npz"))
        assert result.returncode == 0, result.stderr[-2000:]
        with np.load(tmp_path / "s.npz") as archive:
            assert archive["images"].shape == (5, *shape) and archive["images"].dtype == np.uint8
        result = cli(program, "--run", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.png"))
        assert result.returncode == 0, result.stderr[-2000:]
        grid = np.asarray(Image.open(tmp_path / "s.png"))
        assert grid.ndim == 3 and grid.shape[-1] == 3  # a colour grid, not a grey one


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "folder:EMPTY"], ["holds no images"]),
    (["--dataset", "shapes", "--image-size", "30"], ["--image-size", "not a multiple of 4"]),
    (["--dataset", "shapes", "--channels", "5"], ["--channels"]),
    (["--dataset", "shapes", "--image-size", "64", "--arch", "mlp"], ["mlp takes 28×28 images only"]),
    (["--dataset", "cifar10", "--data-dir", "CIFAR"], ["published CIFAR-10 MD5"]),
])
@pytest.mark.parametrize("program", ["gan.train", "vae.train"])
def test_bad_image_data_is_one_line(cli, tmp_path, program, args, fragments):
    (tmp_path / "empty").mkdir()
    write_cifar(tmp_path / "cifar")  # tiny files: not the published CIFAR-10
    args = [a.replace("EMPTY", str(tmp_path / "empty")).replace("CIFAR", str(tmp_path / "cifar"))
            for a in args]
    result = cli(program, *args, "--epochs", "1", "--run-dir", str(tmp_path / "run"), "--no-eval")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()
