"""The policy the chart publishes to submitters in each sandbox namespace (policy-published.yaml) is
the one the operator enforces, whatever the preset; submitters may read it, and create and read
ConfigMaps for a directory's chunks, nothing more."""

from __future__ import annotations

import pytest

from tests.support.chart_render import find, one, render
from tests.unit.chart.test_chart import _enforced_policy

PUBLISHED = "safeagent-policy-published"


@pytest.mark.parametrize("flags", [(), ("--set", "policy.preset=execution"),
                                   ("--set", "policy.preset=custom", "--set-string", "policy.custom=max_output_kb: 8")])
def test_the_published_policy_is_the_enforced_one(flags):
    objects = render("--set", "sandboxNamespaces={team-a,team-b}", *flags)
    published = find(objects, "ConfigMap", PUBLISHED)
    assert sorted(obj["metadata"]["namespace"] for obj in published) == ["team-a", "team-b"]
    for configmap in published:
        chosen = configmap["metadata"]["annotations"]["safeagent.ca/policy-file"]
        assert configmap["data"][chosen] == _enforced_policy(objects)


def test_submitters_read_the_published_policy_and_uploaders_create_and_get_configmaps():
    """The submitter role reads only the published policy (check_command); what `safeagent run
    --source DIR` needs (chunks uploaded and checked) is the uploader role's, and nothing more."""
    objects = render()
    submitter = one(objects, "ClusterRole", "safeagent-submitter")
    configmaps = [rule for rule in submitter["rules"] if "configmaps" in rule["resources"]]
    assert configmaps == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [PUBLISHED], "verbs": ["get"]}]
    uploader = one(objects, "ClusterRole", "safeagent-source-uploader")
    assert uploader["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}]
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        assert binding["roleRef"]["name"] != "safeagent-source-uploader", "the chart binds nobody to it"
