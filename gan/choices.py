"""The names `gan.train`'s flags accept (--arch, --init, --loss, --optimizer, --diffaugment, …).

Without TensorFlow, so that `python -m gan.train --help` and a bad flag answer before it
loads. `gan.losses.OBJECTIVES` must register `LOSSES` (tests/gan/test_losses.py checks it).
"""

from __future__ import annotations

from common.errors import UserError

ARCHITECTURES = ("dcgan", "mlp")
INITS = ("radford", "glorot", "goodfellow")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "linear")
UPSAMPLING = ("transposed", "nearest")
DOWNSAMPLING = ("strided", "average")
LOSSES = ("nonsaturating", "minimax", "wgan-gp", "hinge", "lsgan")
LOGIT_LOSSES = ("nonsaturating", "minimax")  # D(x) a probability: label smoothing applies
OPTIMIZERS = ("adam", "sgd-paper")
AUGMENTATIONS = ("translation", "cutout")


def parse_augmentations(policy: str) -> tuple[str, ...]:
    """"translation,cutout" → ("translation", "cutout"); unknown names are a `UserError`."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or not names:
        raise UserError(f"--diffaugment: {policy!r} is not a comma-separated list of "
                        f"{', '.join(AUGMENTATIONS)}")
    return names
