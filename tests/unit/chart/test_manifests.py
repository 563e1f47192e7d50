"""manifests/safeagent.yaml is exactly what `make manifests` renders from the chart today."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.support.chart_render import REPO, helm_binary

MANIFEST = REPO / "manifests" / "safeagent.yaml"


def test_rendered_manifests_are_current(tmp_path):
    helm_dir = str(Path(helm_binary()).parent)  # skips with the reason when helm is missing
    fresh = tmp_path / "safeagent.yaml"
    env = {**os.environ, "PATH": helm_dir + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run(
        [str(REPO / "charts" / "render-manifests.sh"), str(fresh)],
        check=True, capture_output=True, text=True, timeout=120, env=env,
    )
    assert MANIFEST.exists(), "manifests/safeagent.yaml is missing: run `make manifests`"
    assert MANIFEST.read_text() == fresh.read_text(), "manifests are stale: run `make manifests`"


def test_manifests_hold_the_crds_and_the_operator_in_its_namespace():
    objects = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    kinds = [obj["kind"] for obj in objects]
    assert kinds[0] == "Namespace" and objects[0]["metadata"]["name"] == "safeagent-system"
    assert kinds.count("CustomResourceDefinition") == 2
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    # (the policy the chart publishes to submitters lives in each sandbox namespace: templates/policy-published.yaml)
    namespaced = [obj for obj in objects if obj["kind"] in {"Deployment", "ServiceAccount", "ConfigMap"}
                  and obj["metadata"]["name"] != "safeagent-policy-published"]
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {"safeagent-system"}
