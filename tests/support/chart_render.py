"""Render the safeagent Helm chart for the chart and manifests tests.

Every test that needs helm goes through `render`; without helm the test is skipped with the reason
(`make cluster` builds helm into $SAFEAGENT_CACHE/bin).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "safeagent"
RELEASE = "safeagent"
RELEASE_NAMESPACE = "safeagent-system"
# The same fixed version charts/render-manifests.sh renders with.
KUBE_VERSION = "1.36.0"


def helm_binary() -> str:
    cache = Path(os.environ.get("SAFEAGENT_CACHE", Path.home() / ".cache" / "safeagent"))
    found = shutil.which("helm") or shutil.which("helm", path=str(cache / "bin"))
    if not found:
        pytest.skip("helm is not installed: `make cluster` builds it into $SAFEAGENT_CACHE/bin")
    return found


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def render_text(*flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return helm(
        "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
        "--kube-version", KUBE_VERSION, *flags, check=check,
    )


def render(*flags: str) -> list[dict]:
    """The chart's objects (without CRDs unless asked) for the given extra helm flags."""
    return [doc for doc in yaml.safe_load_all(render_text(*flags).stdout) if doc]


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        obj for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
