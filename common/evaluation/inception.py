"""InceptionV3 pool features, so FID / KID can be set beside published numbers.

`keras.applications.InceptionV3` without its top, global-average pooled: 2,048 features of
each image resized (bilinear) to 299×299, grey repeated to RGB, pixels scaled to [−1, 1]
as the Keras model expects. The weights come from the file `$INCEPTION_WEIGHTS` (a Keras
InceptionV3 no-top weights file) or, when that is unset, from Keras' download of the
ImageNet weights. This is NOT the TF1 graph (`pool_3` of the 2015 Inception release) that
the original FID code of Heusel et al. 2017 and most papers use: the Keras weights were
trained separately and the resize differs, so FIDs from it are near, not equal, to those
papers' numbers (docs/experiments.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.errors import UserError, first_line

INCEPTION_SIZE = 299
FEATURES = 2048


def inception_weights() -> str:
    """`$INCEPTION_WEIGHTS` when set (it must be a file), else "imagenet" (Keras' download)."""
    path = os.environ.get("INCEPTION_WEIGHTS")
    if not path:
        return "imagenet"
    if not Path(path).expanduser().is_file():
        raise UserError(f"INCEPTION_WEIGHTS={path}: no such file (a Keras InceptionV3 no-top "
                        "weights file, e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)")
    return str(Path(path).expanduser())


def inception_network(weights: str | None = None, size: int = INCEPTION_SIZE) -> keras.Model:
    """InceptionV3 (no top, average-pooled) on size×size RGB; `weights` None means
    `inception_weights()`, "random" an untrained network (for tests). Weights that cannot be
    found or downloaded are one `UserError` line."""
    weights = inception_weights() if weights is None else weights
    try:
        return keras.applications.InceptionV3(
            include_top=False, weights=None if weights == "random" else weights,
            input_shape=(size, size, 3), pooling="avg")
    except UserError:
        raise
    except Exception as error:  # URLError offline, OSError / ValueError for a bad file
        raise UserError(f"no InceptionV3 weights ({first_line(error)[:160]}); set INCEPTION_WEIGHTS "
                        "to a Keras InceptionV3 no-top weights file") from None


class InceptionFeatures:
    """Images (N, H, W[, C]) float in [0, 1], any size, grey or RGB → (N, 2048) features."""

    def __init__(self, network: keras.Model | None = None):
        self.network = network or inception_network()
        size = self.network.input_shape[1]
        spec = [tf.TensorSpec([None, None, None, None], tf.float32)]

        def embed(images: tf.Tensor) -> tf.Tensor:
            images = tf.image.resize(images, (size, size), method="bilinear")
            images = tf.broadcast_to(images, [tf.shape(images)[0], size, size, 3])  # grey → RGB
            return self.network(images * 2.0 - 1.0, training=False)

        self._embed = tf.function(embed, input_signature=spec)

    def features(self, images: np.ndarray, batch_size: int = 50) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
            raise ValueError(f"expected images (N > 0, H, W[, 1 or 3]), got shape {images.shape}")
        return np.concatenate([self._embed(images[i:i + batch_size]).numpy()
                               for i in range(0, len(images), batch_size)])
