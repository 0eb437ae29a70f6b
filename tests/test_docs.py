"""The documentation a cloner has: every relative link resolves, every citation of
docs/theory.md or docs/design.md in the code names a section that exists, and nothing points
outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "data" / "README.md"]
DOCS += sorted((ROOT / "benchmarks").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# the names of notes that live outside the repository (spelled in pieces so that this file
# does not mention them itself)
OUTSIDE = ["THEO" + "RY.md", "PIT" + "FALLS", "../" + "shared", "shared" + "/"]


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    files = [ROOT / line for line in out.splitlines()]
    return files or [p for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts]


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+\s+(.*)$", markdown.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def theory_sections() -> set[str]:
    text = (ROOT / "docs" / "theory.md").read_text()
    return set(re.findall(r"§(\d+(?:\.\d+)?)", text.split("\n## ", 1)[1]))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if ROOT.resolve() not in [file, *file.parents]:
            broken.append(f"{target} (outside the repository)")
        elif not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no such heading)")
    assert broken == []


def test_code_cites_sections_that_exist():
    design, sections = anchors(ROOT / "docs" / "design.md"), theory_sections()
    missing = []
    for path in tracked_files():
        if path.suffix not in (".py", ".yaml", ".md") or not path.exists():
            continue
        text = path.read_text()
        missing += [f"{path.name}: #{a}" for a in re.findall(r"design\.md#([\w-]+)", text)
                    if a not in design]  # fmt: skip
        for cited in re.findall(r"theory\.md((?:,? ?§\d+(?:\.\d+)?(?:-§\d+)?)+)", text):
            missing += [f"{path.name}: §{s}" for s in re.findall(r"§(\d+(?:\.\d+)?)", cited)
                        if s not in sections]  # fmt: skip
    assert missing == []


def test_nothing_points_outside_the_repository():
    found = []
    for path in tracked_files():
        if not path.is_file() or path.suffix in (".png", ".ckpt", ".pt"):
            continue
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(ROOT)}: {word}" for word in OUTSIDE if word in text]
    assert found == []
