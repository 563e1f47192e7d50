"""The chart's RBAC as the API server's authorizer reads it (SubjectAccessReview, what `kubectl
auth can-i --as` asks): the operator may do its job in a sandbox namespace and nothing else, the
two user roles keep submitting and deciding apart, and merely being authenticated gives nothing."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from tests.api.stage import OPERATOR_USER, RELEASE_NAMESPACE

GROUPS = {"sandboxjobs": "safeagent.ca", "approvals": "safeagent.ca", "networkpolicies": "networking.k8s.io",
          "rolebindings": "rbac.authorization.k8s.io", "customresourcedefinitions": "apiextensions.k8s.io",
          "localsubjectaccessreviews": "authorization.k8s.io", "subjectaccessreviews": "authorization.k8s.io"}


# What the API server puts in the operator's token's identity besides its name: a grant to any of
# these groups reaches the operator too.
OPERATOR_GROUPS = ["system:serviceaccounts", f"system:serviceaccounts:{RELEASE_NAMESPACE}", "system:authenticated"]


def can(stage, user: str, verb: str, resource: str, namespace: str | None, groups: list[str] | None = None) -> bool:
    name, _, subresource = resource.partition("/")
    attributes = {"verb": verb, "resource": name, "group": GROUPS.get(name, ""), "subresource": subresource}
    if namespace:
        attributes["namespace"] = namespace
    if user == OPERATOR_USER and groups is None:
        groups = OPERATOR_GROUPS
    review = client.AuthorizationV1Api(stage.admin).create_subject_access_review({
        "spec": {"user": user, "groups": groups or [], "resourceAttributes": attributes},
    })
    return bool(review.status.allowed)


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("create", "pods"), ("delete", "pods"), ("watch", "pods"), ("get", "pods/log"),
        ("patch", "sandboxjobs/status"), ("create", "approvals"), ("create", "networkpolicies"),
        ("create", "events"),
        # a waiting Pod's own Events and whether a job's source exists (issue 11, item 8)
        ("list", "events"), ("get", "persistentvolumeclaims"), ("get", "configmaps"),
        # whether a job's requester may read its source (issue 17)
        ("create", "localsubjectaccessreviews"),
        # retention (issue 18): final jobs expire, uploads no job refers to are removed
        ("delete", "sandboxjobs"), ("list", "configmaps"), ("delete", "configmaps"),
    ],
)
def test_operator_may_do_its_job_in_the_sandbox_namespace(stage, namespace, verb, resource):
    assert can(stage, OPERATOR_USER, verb, resource, namespace)


@pytest.mark.parametrize(
    ("verb", "resource", "where"),
    [
        ("create", "pods/exec", "sandbox"),
        ("get", "pods/exec", "sandbox"),
        ("create", "pods/attach", "sandbox"),
        ("create", "pods/portforward", "sandbox"),
        ("get", "secrets", "sandbox"),
        ("list", "secrets", "release"),
        ("list", "secrets", None),
        ("create", "pods", "default"),
        ("create", "pods", "release"),
        ("create", "serviceaccounts/token", "sandbox"),
        ("create", "rolebindings", "sandbox"),
        ("delete", "namespaces", None),
        ("patch", "namespaces", None),
        ("update", "sandboxjobs", "sandbox"),
        ("deletecollection", "sandboxjobs", "sandbox"),  # one job at a time, by UID, after its audit line
        ("delete", "sandboxjobs", "release"),
        ("deletecollection", "configmaps", "sandbox"),
        ("create", "configmaps", "sandbox"),
        ("update", "configmaps", "sandbox"),
        ("patch", "configmaps", "sandbox"),
        ("delete", "configmaps", "release"),
        ("list", "configmaps", "release"),
        ("delete", "approvals", "sandbox"),  # an expired job's Approval goes with it by owner reference
        ("list", "customresourcedefinitions", None),  # scanning is off: no cluster-scoped right at all
        ("get", "configmaps", "release"),
        ("create", "subjectaccessreviews", None),  # reviews are namespaced: asked only where it works
        ("create", "localsubjectaccessreviews", "default"),
        ("impersonate", "users", None),
    ],
)
def test_operator_is_denied(stage, namespace, verb, resource, where):
    target = {"sandbox": namespace, "release": RELEASE_NAMESPACE, None: None}.get(where, where)
    assert not can(stage, OPERATOR_USER, verb, resource, target)


def test_authenticated_users_get_nothing_from_the_chart(stage, namespace):
    for verb, resource in [("create", "sandboxjobs"), ("list", "sandboxjobs"), ("patch", "approvals")]:
        assert not can(stage, "someone", verb, resource, namespace, ["system:authenticated"]), f"{verb} {resource}"


def test_user_roles_separate_submitting_from_approving(stage, namespace):
    suffix = uuid.uuid4().hex[:6]
    submitter, approver = f"submitter-{suffix}", f"approver-{suffix}"
    stage.bind(namespace, submitter, "safeagent-submitter")
    stage.bind(namespace, approver, "safeagent-approver")
    assert can(stage, submitter, "create", "sandboxjobs", namespace)
    assert not can(stage, submitter, "delete", "sandboxjobs", namespace)
    assert not can(stage, submitter, "patch", "approvals", namespace)
    assert not can(stage, submitter, "create", "sandboxjobs", "default"), "bound in one namespace only"
    assert can(stage, approver, "patch", "approvals", namespace)
    assert not can(stage, approver, "create", "sandboxjobs", namespace)
    assert not can(stage, approver, "patch", "approvals/status", namespace), "status is the operator's"
