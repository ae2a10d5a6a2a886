"""experiments.report: the sentence saying which CPUs the runs trained on."""

from __future__ import annotations

from experiments.report import machines_text


def test_one_cpu_is_named_and_several_are_listed_with_their_runs():
    one = {"Xeon, 2 logical CPUs": ["VAE seed 0", "GAN seed 0"]}
    assert machines_text({"training_cpus": one}) == "Every run trained on: Xeon, 2 logical CPUs."
    two = {"Xeon, 2 logical CPUs": ["VAE seed 0"], "EPYC, 2 logical CPUs": ["VAE seed 1", "GAN seed 0"]}
    assert machines_text({"training_cpus": two}) == (
        "The runs trained on different CPUs, so equal minutes are not equal work: Xeon, 2 logical CPUs "
        "(VAE seed 0); EPYC, 2 logical CPUs (VAE seed 1, GAN seed 0).")
