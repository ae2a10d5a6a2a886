"""The docs' links and pictures resolve (docs/check_links.py): a renamed heading or a moved
picture fails here rather than on the rendered page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_checker():
    spec = importlib.util.spec_from_file_location("check_links", ROOT / "docs" / "check_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_link_and_picture_in_the_docs_resolves(capsys):
    status = load_checker().main()
    assert status == 0, capsys.readouterr().out


def test_a_missing_heading_is_reported(tmp_path, monkeypatch, capsys):
    checker = load_checker()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Title\n[ok](#title) [gone](docs/a.md#nowhere) ![p](x.png)\n")
    (tmp_path / "docs" / "a.md").write_text("# Somewhere\n")
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    assert checker.main() == 1
    assert capsys.readouterr().out.splitlines() == [
        "README.md: image x.png does not exist", "README.md: link docs/a.md#nowhere: no heading #nowhere"]
