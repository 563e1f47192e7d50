"""The CRDs and the policy presets have one source: the chart (issue 11, item 5).

Helm reads only files inside the chart and warns about every symbolic link it follows, so the
files live in `charts/safeagent/crds/` and `charts/safeagent/files/`, and the repository's `crds`
and `configs/policy*.yaml` are links into the chart (for `kubectl apply -f crds/`, the CLI and
the docs). These tests keep it that way: no second copy, no link inside the chart, and a
packaged chart that holds the files themselves.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import yaml

from tests.support.chart_render import CHART, REPO, helm

PAIRS = [
    (REPO / "crds", "*.yaml", CHART / "crds"),
    (REPO / "configs", "policy*.yaml", CHART / "files"),
]


@pytest.mark.parametrize(("source_dir", "pattern", "copy_dir"), PAIRS, ids=["crds", "policies"])
def test_chart_copies_equal_their_sources(source_dir: Path, pattern: str, copy_dir: Path):
    sources = {path.name: path.read_bytes() for path in source_dir.glob(pattern)}
    copies = {path.name: path.read_bytes() for path in copy_dir.glob("*.yaml")}
    assert sources, f"no {pattern} in {source_dir.relative_to(REPO)}"
    assert sorted(copies) == sorted(sources), "the file lists differ"
    stale = [name for name in sources if copies[name] != sources[name]]
    assert not stale, f"{stale} differ from their sources"


def test_the_repository_links_into_the_chart_and_the_chart_holds_files():
    assert (REPO / "crds").is_symlink() and (REPO / "crds").resolve() == (CHART / "crds").resolve()
    policies = sorted((REPO / "configs").glob("policy*.yaml"))
    assert [p.name for p in policies] == sorted(p.name for p in (CHART / "files").glob("policy*.yaml"))
    for path in policies:
        assert path.is_symlink() and path.resolve() == (CHART / "files" / path.name).resolve(), path
    inside = [p for p in CHART.rglob("*") if p.is_symlink()]
    assert not inside, f"links inside the chart (Helm warns and a copied chart breaks): {inside}"


def test_chart_has_both_policy_presets_and_both_crds():
    assert {p.name for p in (CHART / "files").glob("*.yaml")} >= {"policy.yaml", "policy.execution.yaml"}
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (CHART / "crds").glob("*.yaml")}
    assert kinds == {"SandboxJob", "Approval"}


def test_the_packaged_chart_holds_the_crds_and_policies(tmp_path):
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert "symbolic link" not in result.stderr
    (archive,) = tmp_path.glob("*.tgz")
    with tarfile.open(archive) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers()}
    for name in ["crds/safeagent.ca_sandboxjobs.yaml", "crds/safeagent.ca_approvals.yaml",
                 "files/policy.yaml", "files/policy.execution.yaml"]:
        assert name in members and members[name].isfile(), name
