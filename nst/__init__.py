"""Neural style transfer (Gatys, Ecker & Bethge 2016) on VGG19 features: `python -m nst.run`."""

import common  # noqa: F401  (first: TensorFlow then starts without its C++ log lines)
