"""One-off data and figure scripts behind documented results: `python -m experiments.scripts.<name>`."""
