"""The chart's copies of crds/ and configs/policy*.yaml are the sources, byte for byte.

Helm reads only files inside the chart, so `make chart-files` copies them in; these tests catch a
copy that was forgotten after the source changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chart_render import CHART, REPO

PAIRS = [
    (REPO / "crds", "*.yaml", CHART / "crds"),
    (REPO / "configs", "policy*.yaml", CHART / "files"),
]


@pytest.mark.parametrize(("source_dir", "pattern", "copy_dir"), PAIRS, ids=["crds", "policies"])
def test_chart_copies_equal_their_sources(source_dir: Path, pattern: str, copy_dir: Path):
    sources = {path.name: path.read_bytes() for path in source_dir.glob(pattern)}
    copies = {path.name: path.read_bytes() for path in copy_dir.glob("*.yaml")}
    assert sources, f"no {pattern} in {source_dir.relative_to(REPO)}"
    assert sorted(copies) == sorted(sources), "run `make chart-files`: the file lists differ"
    stale = [name for name in sources if copies[name] != sources[name]]
    assert not stale, f"run `make chart-files`: {stale} differ from their sources"


def test_chart_has_both_policy_presets_and_both_crds():
    assert {p.name for p in (CHART / "files").glob("*.yaml")} >= {"policy.yaml", "policy.execution.yaml"}
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (CHART / "crds").glob("*.yaml")}
    assert kinds == {"SandboxJob", "Approval"}
