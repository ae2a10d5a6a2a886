"""Neural style transfer (Gatys, Ecker & Bethge 2016) on VGG19 features: `python -m nst.run`."""

import common  # noqa: F401  (sets TensorFlow's log level before TensorFlow is imported)
