"""Evaluation of samples: the metrics, the feature networks that give them features, and
the one scoring path.

- `metrics.py`: FID, KID, precision/recall, density/coverage, Parzen, classifier scores.
- `classifier.py`: the project's feature classifier per dataset, its cache, `get_classifier`.
- `inception.py`: InceptionV3 features, for FIDs beside published ones.
- `scoring.py`: `References` and `score`, which every program's sample numbers come from.
- `quality.py`: `SampleQuality`, the Keras callback that scores samples during training.
"""
