"""The AdaIN style transfer network (Huang & Belongie, "Arbitrary Style Transfer in Real-time
with Adaptive Instance Normalization", ICCV 2017).

    content c ─ f ─┐
                   AdaIN ─ t ─ (α·t + (1−α)·f(c)) ─ g ─ stylised image
    style s ─── f ─┘

f is VGG19 up to relu4_1 (`block4_conv1`; Keras' conv layers include their ReLU), frozen,
with the shared ImageNet weights and caffe preprocessing (`nst.model`), each layer's output
divided by a fixed scale (`FEATURE_SCALES`). AdaIN gives the
content features the style features' channel-wise mean and standard deviation:

    AdaIN(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y)        (paper, eq. 8)

g, the only trained part, mirrors f: every pooling becomes ×2 nearest-neighbour upsampling,
every convolution is reflection-padded (less border artefacts than zero padding), and no
normalization layer is used (the paper found that instance or batch norm in g hurts).
Images are RGB in [0, 1]; g's output is unbounded and clipped only for display.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from nst.losses import channel_mean_std
from nst.model import feature_extractor, load_vgg19
from nst.transform import PACKAGE, ReflectionPadding2D

# relu1_1 … relu4_1: the style loss's layers; the last one is also AdaIN's.
ENCODER_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
# Each layer's mean activation over the 22 offline images of experiments/scripts/adain_data.py (the two
# held out included) at 256 px. Dividing by it puts every layer near 1, the per-layer version of the "normalised"
# VGG19 of Gatys et al. (every filter's mean activation on ImageNet rescaled to 1) that the
# paper's code uses; without it relu4_1 (~530) would outweigh relu1_1 (~23) in L_s, and
# λ = 10 would not mean what it means in the paper.
FEATURE_SCALES = {"block1_conv1": 23.0, "block2_conv1": 131.0, "block3_conv1": 138.0,
                  "block4_conv1": 533.0}
EPSILON = 1e-5
# The decoder, relu4_1 → image: the filters of each 3×3 convolution per resolution, an
# upsampling before every stage after the first, then a last convolution to RGB. It mirrors
# VGG19 block4_conv1 … block1_conv2 (each conv's input and output channels swapped),
# exactly the paper's decoder.
DECODER_STAGES = ((256,), (256, 256, 256, 128), (128, 64), (64,))


def adaptive_instance_norm(content: tf.Tensor, style_mean: tf.Tensor, style_std: tf.Tensor,
                           epsilon: float = EPSILON) -> tf.Tensor:
    """σ(y)·(x − μ(x))/σ(x) + μ(y) (eq. 8) for content features x and the style's μ(y), σ(y)."""
    mean, std = channel_mean_std(content, epsilon)
    return (tf.cast(content, tf.float32) - mean) / std * style_std + style_mean


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaIN(layers.Layer):
    """AdaIN(x, y): content features x with the per-image, per-channel μ and σ of y (eq. 8)."""

    def __init__(self, epsilon: float = EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, content, style):
        style_mean, style_std = channel_mean_std(style, self.epsilon)
        return adaptive_instance_norm(content, style_mean, style_std, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def build_decoder() -> keras.Sequential:
    """g: relu4_1 features (…, H/8, W/8, 512) → RGB image (…, H, W, 3), VGG19 mirrored."""
    stack: list[layers.Layer] = [keras.Input((None, None, 512), name="relu4_1")]
    for stage, stage_filters in enumerate(DECODER_STAGES):
        if stage:
            stack.append(layers.UpSampling2D(2, interpolation="nearest", name=f"up{stage}"))
        for index, filters in enumerate(stage_filters):
            stack += [ReflectionPadding2D(1, name=f"pad{stage}_{index}"),
                      layers.Conv2D(filters, 3, activation="relu", name=f"conv{stage}_{index}")]
    stack += [ReflectionPadding2D(1, name="pad_out"), layers.Conv2D(3, 3, name="rgb")]
    return keras.Sequential(stack, name="decoder")


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaINStyleTransfer(keras.Model):
    """Frozen encoder f + trained decoder g; `call((content, style))` = g(AdaIN(f(c), f(s))).

    `encode` gives the four relu*_1 feature maps; `decode` maps relu4_1 features to an
    image; the stylisation controls (α, several styles, masks) combine the two in
    `nst.adain`.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.encoder.trainable = False
        self.adain = AdaIN(name="adain")

    @classmethod
    def from_vgg19(cls, weights: str) -> AdaINStyleTransfer:
        """A new model: the encoder cut from VGG19 with `weights`, an untrained decoder."""
        return cls(feature_extractor(load_vgg19(weights), list(ENCODER_LAYERS)), build_decoder())

    def encode(self, images) -> list[tf.Tensor]:
        """RGB [0, 1] images → [relu1_1, relu2_1, relu3_1, relu4_1] features / FEATURE_SCALES."""
        features = self.encoder(keras.applications.vgg19.preprocess_input(images * 255.0),
                                training=False)
        return [features[name] / FEATURE_SCALES[name] for name in ENCODER_LAYERS]

    def decode(self, features, training: bool = False) -> tf.Tensor:
        return tf.cast(self.decoder(features, training=training), tf.float32)

    def call(self, inputs, training: bool = False):
        content, style = inputs
        return self.decode(self.adain(self.encode(content)[-1], self.encode(style)[-1]), training)

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)
