"""Values that would disarm the sandbox fail the render (issue 11, item 6).

Kubernetes reads a limit of "0" as "no limit", so a zero, absent or malformed sandbox limit or
request must stop `helm install`; so must a sandbox namespace that is a system namespace, and
memory-backed volumes that do not fit below the memory limit. The operator's own configuration
refuses the same (tests/unit/test_config.py): these tests pin the chart's side.
"""

from __future__ import annotations

import pytest
import yaml

from tests.support.chart_render import RELEASE_NAMESPACE, one, render, render_text
from safeagent.config import parse_config

QUANTITY_KEYS = [
    ("resources", "cpu"), ("resources", "memory"), ("resources", "ephemeralStorage"),
    ("requests", "cpu"), ("requests", "memory"), ("requests", "ephemeralStorage"),
]


def render_values(tmp_path, values: dict):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return render_text("-f", str(path), check=False)


def refused(tmp_path, values: dict, message: str) -> None:
    result = render_values(tmp_path, values)
    assert result.returncode != 0, f"{values} rendered"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(("block", "key"), QUANTITY_KEYS)
@pytest.mark.parametrize("zero", [0, "0", "0m", "0.0", "0Gi", "00", "-1", ""])
def test_a_zero_sandbox_quantity_fails_the_render(tmp_path, block, key, zero):
    refused(tmp_path, {"sandbox": {block: {key: zero}}}, f"'/sandbox/{block}/{key}'")


@pytest.mark.parametrize(("block", "key"), QUANTITY_KEYS)
def test_an_absent_sandbox_quantity_fails_the_render(tmp_path, block, key):
    # A null value deletes the key from the merged values; the schema's `required` catches it.
    refused(tmp_path, {"sandbox": {block: {key: None}}}, f"'/sandbox/{block}': missing property '{key}'")


@pytest.mark.parametrize("key", ["workspaceSizeLimit", "tmpSizeLimit", "shmSizeLimit", "memoryMargin"])
@pytest.mark.parametrize("zero", [0, "0", "0Mi", "0.0Gi", ""])
def test_a_zero_volume_size_fails_the_render(tmp_path, key, zero):
    refused(tmp_path, {"sandbox": {key: zero}}, f"'/sandbox/{key}'")


@pytest.mark.parametrize(
    ("memory", "workspace", "tmp"),
    [("512Mi", "448Mi", "64Mi"), ("512Mi", "1Gi", "1Mi"), ("1G", "1000M", 1), ("512Mi", "300000k", "250000k")],
)
def test_volumes_not_below_the_memory_limit_fail_the_render(tmp_path, memory, workspace, tmp):
    values = {"sandbox": {"resources": {"memory": memory}, "workspaceSizeLimit": workspace, "tmpSizeLimit": tmp}}
    refused(tmp_path, values, "must be below sandbox.resources.memory")


def test_volumes_below_the_memory_limit_render_and_the_operator_accepts_them(tmp_path):
    values = {"sandbox": {"resources": {"memory": "1Gi"}, "workspaceSizeLimit": "800Mi", "tmpSizeLimit": "100Mi",
                          "shmSizeLimit": "16Mi", "memoryMargin": "100Mi", "pids": {"max": 256, "required": False}}}
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    text = one(render("-f", str(path)), "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    sandbox = parse_config(yaml.safe_load(text)).sandbox
    assert (sandbox.resources.memory, sandbox.workspaceSizeLimit, sandbox.tmpSizeLimit) == ("1Gi", "800Mi", "100Mi")
    assert (sandbox.shmSizeLimit, sandbox.memoryMargin) == ("16Mi", "100Mi")
    assert (sandbox.pids.max, sandbox.pids.required) == (256, False)


def test_the_runner_margin_counts_against_the_memory_limit(tmp_path):
    refused(tmp_path, {"sandbox": {"memoryMargin": "192Mi"}}, "sandbox.memoryMargin (192Mi) must be below")


@pytest.mark.parametrize(
    ("uid_range", "message"),
    [
        ({"first": 0}, "'/sandbox/uidRange/first'"),  # root
        ({"first": 999}, "'/sandbox/uidRange/first'"),  # a system user
        ({"count": 0}, "'/sandbox/uidRange/count'"),
        ({"first": None}, "'/sandbox/uidRange': missing property 'first'"),
        ({"first": 2147483000}, "first (2147483000) + count (65536) - 1 is above 2147483646"),
        ({"first": 2147483646, "count": 2}, "first (2147483646) + count (2) - 1 is above 2147483646"),
    ],
)
def test_a_uid_range_with_root_system_users_or_past_2_31_fails_the_render(tmp_path, uid_range, message):
    refused(tmp_path, {"sandbox": {"uidRange": uid_range}}, message)


def test_the_uid_range_reaches_the_operator(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"sandbox": {"uidRange": {"first": 2147483000, "count": 647}}}))
    text = one(render("-f", str(path)), "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    uid_range = parse_config(yaml.safe_load(text)).sandbox.uidRange
    assert (uid_range.first, uid_range.last) == (2147483000, 2147483646)
    default = one(render(), "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    assert parse_config(yaml.safe_load(default)).sandbox.uidRange == parse_config({}).sandbox.uidRange


def test_a_request_above_its_limit_fails_the_render(tmp_path):
    refused(tmp_path, {"sandbox": {"requests": {"cpu": "1500m"}}}, "sandbox.requests.cpu (1500m) is above")


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "default"])
def test_a_system_sandbox_namespace_fails_the_render(tmp_path, namespace):
    refused(tmp_path, {"sandboxNamespaces": ["team-a", namespace]}, "'/sandboxNamespaces/1'")


def test_the_release_namespace_as_sandbox_namespace_fails_the_render(tmp_path):
    refused(tmp_path, {"sandboxNamespaces": [RELEASE_NAMESPACE]}, "is the release namespace")


@pytest.mark.parametrize(("values", "message"), [
    ({"retention": {"sourceGraceSeconds": 599}}, "must be 0 (keep) or at least 600"),
    ({"retention": {"sourceGraceSeconds": -1}}, "'/retention/sourceGraceSeconds'"),
    ({"retention": {"finishedJobSeconds": -1}}, "'/retention/finishedJobSeconds'"),
    ({"retention": {"sweepIntervalSeconds": 5}}, "'/retention/sweepIntervalSeconds'"),
    ({"retention": {"finishedJobSeconds": None}}, "missing property 'finishedJobSeconds'"),
])
def test_retention_values_out_of_range_fail_the_render(tmp_path, values, message):
    refused(tmp_path, values, message)


@pytest.mark.parametrize("retention", [
    {"finishedJobSeconds": 0, "sourceGraceSeconds": 0, "sweepIntervalSeconds": 10},
    {"finishedJobSeconds": 3600, "sourceGraceSeconds": 600, "sweepIntervalSeconds": 86400},
])
def test_retention_values_reach_the_operator_configuration(tmp_path, retention):
    result = render_values(tmp_path, {"retention": retention})
    assert result.returncode == 0, result.stderr
    configmap = one([doc for doc in yaml.safe_load_all(result.stdout) if doc], "ConfigMap", "safeagent-config")
    assert parse_config(yaml.safe_load(configmap["data"]["config.yaml"])).retention.model_dump() == retention
