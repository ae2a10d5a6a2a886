"""docs/development.md's code layout cannot go stale: every module of every package is named
in it, under its folder, and every file or folder it names exists."""

from __future__ import annotations

import re

from tests.helpers import ROOT

PACKAGES = ("common", "common/evaluation", "nst", "vae", "gan", "pixelcnn", "diffusion", "experiments",
            "experiments/bench", "experiments/scripts")


def layout() -> dict[str, str]:
    """{folder: the text of its lines} from the layout block (a folder's lines run until the
    next line that names a folder at the start)."""
    text = (ROOT / "docs" / "development.md").read_text()
    block = text[text.index("## Code layout"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    sections, current = {}, None
    for line in block.splitlines():
        head = re.match(r"^([\w./]+/)\s", line)
        if head:
            current = head.group(1).rstrip("/")
        if current is not None:
            sections[current] = sections.get(current, "") + line + "\n"
    return sections


def test_every_module_is_named_under_its_folder():
    sections = layout()
    for package in PACKAGES:
        assert package in sections, package
        for module in sorted((ROOT / package).glob("*.py")):
            if module.name != "__init__.py":
                assert re.search(rf"\b{re.escape(module.name)}\b", sections[package]), f"{package}/{module.name}"


def test_every_name_in_the_layout_exists():
    for folder, text in layout().items():
        assert (ROOT / folder).exists(), folder
        for name in re.findall(r"\b([a-z_]+\.py)\b", text):
            assert (ROOT / folder / name).is_file(), f"{folder}/{name}"
