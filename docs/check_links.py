"""Check that every image and local link in README.md, docs/*.md and the study logs
experiments/results/**/README.md resolves.

    python docs/check_links.py            # exit 1 and one line per broken link

The same rules hold in every file: images (`![alt](path)`, `<img src="path">`) must exist
on disk; Markdown links to local files must exist, and their `#anchor`, if any, must match a
heading (GitHub's slug rules).
Links to files named in PENDING (written by someone else) are reported but not fatal.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PENDING = {"docs/runs.md"}
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img\s[^>]*src=\"([^\"]+)\"")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def documents() -> list[Path]:
    """README.md, docs/*.md, then every experiments/results/**/README.md (the study logs)."""
    studies = sorted((ROOT / "experiments" / "results").glob("**/README.md"))
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *studies]


def main() -> int:
    broken, pending = [], []
    for doc in documents():
        text = FENCE.sub("", doc.read_text(encoding="utf-8"))
        where = doc.relative_to(ROOT)
        for match in IMAGE.finditer(text):
            target = match.group(1) or match.group(2)
            if not (doc.parent / target).is_file():
                broken.append(f"{where}: image {target} does not exist")
        for match in LINK.finditer(text):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if not path.exists():
                (pending if name in PENDING else broken).append(f"{where}: link {target} does not exist")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{where}: link {target}: no heading #{anchor}")
    for line in pending:
        print(f"pending: {line}")
    for line in broken:
        print(line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
