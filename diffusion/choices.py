"""The names `diffusion.train`'s flags accept (--schedule).

Without TensorFlow, so that `python -m diffusion.train --help` and a bad flag answer before
it loads.
"""

SCHEDULES = ("linear", "cosine")
