"""The image transformation network of fast style transfer.

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution" (ECCV 2016), with two later refinements that the literature settled on:
instance normalization instead of batch normalization (Ulyanov, Vedaldi & Lempitsky 2016)
and resize-convolution instead of transposed convolution for upsampling, which avoids
checkerboard artefacts (Odena, Dumoulin & Olah 2016).

    reflect-pad, 9×9 conv 32 → 3×3 conv 64 /2 → 3×3 conv 128 /2 → 5 residual blocks
    → ×2 nearest + 3×3 conv 64 → ×2 nearest + 3×3 conv 32 → 9×9 conv 3 → sigmoid

Every convolution is reflection-padded and followed by instance normalization and ReLU
(except the last). The network is fully convolutional: any input of at least 4×4 pixels
gives an output of exactly its size (inputs are reflect-padded to a multiple of 4 and the
output cropped back). Images are RGB in [0, 1] in and out.
"""

from __future__ import annotations

import keras
from keras import layers, ops

PACKAGE = "nst"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReflectionPadding2D(layers.Layer):
    """Pad height and width by `padding` pixels, mirroring the image at its edges."""

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs):
        p = self.padding
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        grow = lambda size: None if size is None else size + 2 * self.padding  # noqa: E731
        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def conv_block(filters: int, kernel: int, stride: int = 1, activation: bool = True,
               upsample: bool = False, name: str = "conv") -> keras.Sequential:
    """[×2 nearest] → reflect pad → conv → instance norm → [ReLU]."""
    block = []
    if upsample:
        block.append(layers.UpSampling2D(2, interpolation="nearest"))
    block += [ReflectionPadding2D(kernel // 2),
              layers.Conv2D(filters, kernel, strides=stride, padding="valid")]
    if activation:
        # groups=-1: one group per channel, i.e. instance normalization.
        block += [layers.GroupNormalization(groups=-1, epsilon=1e-5), layers.ReLU()]
    return keras.Sequential(block, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """x + IN(conv(ReLU(IN(conv(x))))): two 3×3 convolutions with an identity shortcut."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.first = conv_block(filters, 3, name="first")
        self.second = keras.Sequential([ReflectionPadding2D(1),
                                        layers.Conv2D(filters, 3, padding="valid"),
                                        layers.GroupNormalization(groups=-1, epsilon=1e-5)],
                                       name="second")

    def call(self, inputs):
        return inputs + self.second(self.first(inputs))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformNet(keras.Model):
    """Photo → stylised photo of the same size, RGB in [0, 1]."""

    def __init__(self, residual_blocks: int = 5, width: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.residual_blocks = residual_blocks
        self.width = width
        self.body = keras.Sequential(
            [conv_block(width, 9, name="in"),
             conv_block(2 * width, 3, stride=2, name="down1"),
             conv_block(4 * width, 3, stride=2, name="down2"),
             *[ResidualBlock(4 * width, name=f"residual{i + 1}") for i in range(residual_blocks)],
             conv_block(2 * width, 3, upsample=True, name="up1"),
             conv_block(width, 3, upsample=True, name="up2"),
             ReflectionPadding2D(4), layers.Conv2D(3, 9, padding="valid", name="out")],
            name="body")

    def call(self, images):
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        # Two stride-2 convolutions: pad to a multiple of 4 so upsampling lands on the input size.
        pad_h, pad_w = (-height) % 4, (-width) % 4
        padded = ops.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="reflect")
        output = ops.sigmoid(ops.cast(self.body(padded), "float32"))
        return output[:, :height, :width, :]

    def get_config(self):
        return {**super().get_config(), "residual_blocks": self.residual_blocks,
                "width": self.width}
