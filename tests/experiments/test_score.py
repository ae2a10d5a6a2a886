"""experiments.score: samples from an .npz or a folder scored against a dataset split or
another set, one JSON object out; the classifier built when none is cached; bad input.

The tiny cached classifier of tests.conftest stands in for the real one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import common.evaluation.classifier
from common.data import load_splits
from common.errors import UserError
from common.evaluation.classifier import get_classifier
from common.evaluation.scoring import reference_set, score
from experiments.score import main
from tests.helpers import assert_one_line_error, tiny_trainer

KID = ["--kid-subset-size", "50", "--kid-subsets", "5"]
METRICS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score",
           "classes_covered", "class_kl_to_uniform", "class_counts")


@pytest.fixture(scope="module")
def images(data_dir) -> np.ndarray:
    """200 validation digits as uint8 (N, 28, 28), as vae.sample / gan.sample write them."""
    return np.round(load_splits("mnist", data_dir).x_validation[:200, ..., 0] * 255).astype(np.uint8)


@pytest.fixture
def environment(tiny_classifier_cache, monkeypatch):
    for name, value in tiny_classifier_cache.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow
def test_npz_against_mnist_test_prints_one_json_object_of_the_metrics(cli, tiny_classifier_cache, images,
                                                                      tmp_path, data_dir, monkeypatch):
    np.savez(tmp_path / "samples.npz", images=images)
    result = cli("experiments.score", "--samples", str(tmp_path / "samples.npz"), "--reference", "mnist:test",
                 *KID, "--out", str(tmp_path / "result.json"), env=tiny_classifier_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    assert list(printed) == [*METRICS, "features", "samples", "reference_samples", "kid_subset_size",
                             "kid_subsets"]
    assert printed["features"] == "classifier"
    assert printed == json.loads((tmp_path / "result.json").read_text())
    assert printed["samples"] == 200 and printed["reference_samples"] == 10000
    # The same numbers as the comparison's scoring of these images with this classifier.
    monkeypatch.setenv("CLASSIFIER_CACHE", tiny_classifier_cache["CLASSIFIER_CACHE"])
    classifier = get_classifier("mnist", data_dir, if_missing="error")
    unit = images[..., None].astype(np.float32) / 255.0
    references = reference_set(classifier.features(load_splits("mnist", data_dir).x_test), classifier,
                               kid_subset_size=50, kid_subsets=5)
    expected = score(unit, references)
    for name in METRICS:
        assert printed[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-9), name


@pytest.mark.slow  # whole programs or real data: seconds each
def test_float_npz_folder_of_pngs_and_npz_reference_give_the_same_numbers(environment, images, tmp_path,
                                                                         capsys):
    np.savez(tmp_path / "uint8.npz", images=images)
    np.savez(tmp_path / "float.npz", images=images[..., None].astype(np.float64) / 255.0)
    (tmp_path / "pngs").mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "pngs" / f"{index:03d}.png")
    np.savez(tmp_path / "reference.npz", images=images[100:])
    results = [main(["--samples", str(tmp_path / name), "--reference", str(tmp_path / "reference.npz"), *KID])
               for name in ("uint8.npz", "float.npz", "pngs")]
    capsys.readouterr()
    assert results[0]["reference_samples"] == 100
    for result in results[1:]:
        for name in METRICS:
            assert result[name] == pytest.approx(results[0][name], rel=1e-5, abs=1e-9), name


@pytest.mark.slow
def test_a_missing_classifier_is_built_first_with_its_progress_on_stderr(images, tmp_path, monkeypatch,
                                                                        capsys, data_dir):
    monkeypatch.setenv("CLASSIFIER_CACHE", str(tmp_path / "empty cache"))
    monkeypatch.setenv("DATA_DIR", data_dir)
    monkeypatch.setattr(common.evaluation.classifier, "train_classifier", tiny_trainer())
    np.savez(tmp_path / "samples.npz", images=images)
    main(["--samples", str(tmp_path / "samples.npz"), *KID])
    out, err = capsys.readouterr()
    assert json.loads(out)["samples"] == 200  # stdout stays one JSON object
    assert "no mnist classifier cached: training one (about" in err and str(tmp_path / "empty cache") in err
    assert list((tmp_path / "empty cache").glob("mnist-*.keras"))


def bad_inputs(tmp_path, images) -> list[tuple[list[str], str]]:
    """(arguments, a fragment of the one-line error) for each kind of bad input."""
    arrays = {"rgba.npz": np.zeros((300, 28, 28, 4), np.uint8), "rgb.npz": np.zeros((300, 28, 28, 3), np.uint8),
              "int.npz": images.astype(np.int64),
              "range.npz": images.astype(np.float32), "small.npz": np.zeros((300, 32, 32), np.uint8),
              "flat.npz": images.reshape(200, -1)}
    for name, array in arrays.items():
        np.savez(tmp_path / name, images=array)
    np.savez(tmp_path / "good.npz", images=images)
    np.savez(tmp_path / "other.npz", pictures=images)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    good = str(tmp_path / "good.npz")
    return [(["--samples", str(tmp_path / "missing.npz")], "no such file or folder"),
            (["--samples", str(tmp_path / "rgba.npz")], "found (300, 28, 28, 4)"),
            (["--samples", str(tmp_path / "rgb.npz")], "shape (28, 28, 3), but the reference (mnist:test)"),
            (["--samples", str(tmp_path / "flat.npz")], "found (200, 784)"),
            (["--samples", str(tmp_path / "int.npz")], "found dtype int64"),
            (["--samples", str(tmp_path / "range.npz")], "must lie in [0, 1], found values from 0 to 255"),
            (["--samples", str(tmp_path / "other.npz")], "has no `images` array (found: pictures)"),
            (["--samples", str(tmp_path / "broken.npz")], "not a readable .npz archive"),
            (["--samples", good, "--reference", str(tmp_path / "small.npz")],
             "shape (28, 28, 1), but the reference"),
            (["--samples", good], "200 images; the metrics need at least 1000"),
            (["--samples", good, "--kid-subset-size", "50", "--reference", "mnist:valid"], "unknown split"),
            (["--samples", good, "--reference", "cifar:test"], "neither DATASET:SPLIT"),
            (["--samples", good, "--reference", "mnist:test", "--dataset", "fashion_mnist", *KID],
             "--reference is a mnist split"),
            ([], "--samples")]


@pytest.mark.slow  # whole programs or real data: seconds each
def test_bad_input_is_refused_with_a_one_line_error(environment, images, tmp_path):
    for args, fragment in bad_inputs(tmp_path, images):
        with pytest.raises(UserError) as caught:
            main(args)
        assert fragment in str(caught.value) and "\n" not in str(caught.value), (args, str(caught.value))


@pytest.mark.slow  # whole programs or real data: seconds each
def test_bad_input_from_the_command_line_exits_2(cli, tiny_classifier_cache, tmp_path, images):
    np.savez(tmp_path / "rgba.npz", images=np.zeros((300, 28, 28, 4), np.uint8))
    result = cli("experiments.score", "--samples", str(tmp_path / "rgba.npz"), env=tiny_classifier_cache)
    assert_one_line_error(result, "--samples", "rgba.npz", "found (300, 28, 28, 4)")
