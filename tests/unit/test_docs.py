"""The documentation holds to the code: the claims table names tests that exist, links land, and
the Helm values page is what the chart generates.

README.md is the newcomer's page; docs/ holds the rest, one page per reader. Three things drift
silently when code moves, so each has a check here:

- the README's claims-to-tests table ("What the tests show"): every reference is `path` (a test
  file, or another file the claim rests on, that must exist) or `path::name` (a `def name` or
  `class name` in that file). One failure lists every missing reference with its row;
- relative links in README.md and docs/*.md (and the other READMEs that link into docs/): the file
  exists and, for `#anchor`, so does the heading;
- docs/helm-values.md equals a fresh `charts/values-doc.py` run (`make docs`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CLAIMS_HEADING = "## What the tests show"
# Markdown files whose relative links are checked.
LINKED_PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "configs/README.md",
                REPO / "tests/cluster/README.md"]
README_MAX_LINES = 450


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of each body row of the first table under `heading` (a line of its own)."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    in_table = False
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            if re.match(r"^\|\s*-+", line):
                in_table = True
            elif in_table:
                rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
        elif in_table:
            break
    return rows


def missing_test_references(text: str, repo: Path = REPO) -> tuple[int, list[str]]:
    """How many claim rows there are, and one line per reference that names nothing."""
    problems = []
    rows = table_rows(text, CLAIMS_HEADING)
    for number, cells in enumerate(rows, start=1):
        claim = cells[0][:60] + ("..." if len(cells[0]) > 60 else "")
        where = f"row {number} ({claim})"
        if len(cells) != 2:
            problems.append(f"{where}: {len(cells)} cells, not 2 (claim | tests)")
            continue
        references = re.findall(r"`([^`]+)`", cells[1])
        if not references:
            problems.append(f"{where}: names no test")
        for reference in references:
            path, _, name = reference.partition("::")
            target = repo / path
            if not path.startswith("tests/"):
                problems.append(f"{where}: `{reference}` is not a test reference (`tests/...` or `tests/...::name`)")
            elif not target.is_file():
                problems.append(f"{where}: `{reference}`: no file {path}")
            elif name:
                body = target.read_text()
                pattern = rf"^\s*(async\s+def|def|class)\s+{re.escape(name.split('::')[-1])}\b"
                if not re.search(pattern, body, re.MULTILINE):
                    problems.append(f"{where}: `{reference}`: no `def {name}` in {path}")
    return len(rows), problems


def test_every_row_of_the_claims_table_names_tests_that_exist():
    count, problems = missing_test_references(README.read_text())
    assert count >= 20, f"the claims table under {CLAIMS_HEADING!r} was not found or is nearly empty"
    assert not problems, "README.md's claims table names tests that do not exist:\n" + "\n".join(problems)


def test_the_claims_check_reports_every_missing_reference_with_its_row(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("def test_present():\n    pass\n\nclass TestGroup:\n    pass\n")
    text = "\n".join([
        CLAIMS_HEADING, "",
        "| claim | where it is tested |",
        "| --- | --- |",
        "| fine | `tests/test_a.py`, `tests/test_a.py::test_present`, `tests/test_a.py::TestGroup` |",
        "| gone | `tests/test_b.py`, `tests/test_a.py::test_absent` |",
        "| loose | the unit tests |",
        "| typo | `test/test_a.py` |",
        "", "## Next",
    ])
    count, problems = missing_test_references(text, tmp_path)
    assert count == 4
    assert problems == [
        "row 2 (gone): `tests/test_b.py`: no file tests/test_b.py",
        "row 2 (gone): `tests/test_a.py::test_absent`: no `def test_absent` in tests/test_a.py",
        "row 3 (loose): names no test",
        "row 4 (typo): `test/test_a.py` is not a test reference (`tests/...` or `tests/...::name`)",
    ]


def anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, each space a dash."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def without_code(text: str) -> str:
    """The text with fenced code blocks and inline code spans blanked out (links there are examples)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE):
        base = anchor(heading)
        name, suffix = base, 1
        while name in found:  # a repeated heading gets -1, -2 ...
            name, suffix = f"{base}-{suffix}", suffix + 1
        found.add(name)
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", without_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(REPO)}: ({target})"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading #{fragment} in {resolved.relative_to(REPO)}")
    return problems


def test_relative_links_reach_their_files_and_headings():
    problems = [problem for page in LINKED_PAGES for problem in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_anchors_are_the_ones_github_makes():
    assert anchor("Measured on this project's machine (2 cores, 24 GiB)") == \
        "measured-on-this-projects-machine-2-cores-24-gib"
    assert anchor("Pinned versions (`tests/cluster/versions.env`)") == "pinned-versions-testsclusterversionsenv"
    assert anchor("Node-level egress filter (optional)") == "node-level-egress-filter-optional"


def test_every_docs_page_is_reachable_from_the_readme():
    readme = README.read_text()
    orphans = [page.name for page in (REPO / "docs").glob("*.md") if f"](docs/{page.name}" not in readme]
    assert not orphans, f"docs pages the README does not link: {orphans}"


def test_the_readme_stays_the_newcomers_page():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference material to the "
        "docs/ page of its reader and link it")


def test_the_helm_values_page_is_generated_from_the_chart():
    result = subprocess.run([sys.executable, str(REPO / "charts/values-doc.py"), "--check",
                             str(REPO / "docs/helm-values.md")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
