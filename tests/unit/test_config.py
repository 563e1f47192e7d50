"""Operator configuration: file + environment contract with the Helm chart."""

from __future__ import annotations

import re

import pytest

from safeagent import config
from safeagent.config import ConfigError, parse_config
from safeagent.models import NetworkProfile


def test_defaults_without_a_file(tmp_path):
    loaded = config.load_config({config.ENV_POLICY: str(tmp_path / "p.yaml")})
    assert loaded.policyPath == str(tmp_path / "p.yaml")
    assert loaded.sandbox.image == "safeagent/sandbox:dev"
    assert loaded.profile(NetworkProfile.MODEL_ONLY).egress == []


def test_file_and_environment(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "sandbox:\n  runtimeClassName: gvisor\n  resources: {cpu: '2', memory: 1Gi, ephemeralStorage: 2Gi}\n"
        "networkProfiles:\n  git-read:\n    egress: [{cidr: 10.0.0.0/8, ports: [{port: 443}]}]\n    allowDns: true\n"
    )
    loaded = config.load_config({config.ENV_CONFIG: str(path), config.ENV_NAMESPACES: "a, b"})
    assert loaded.sandbox.runtimeClassName == "gvisor"
    assert loaded.namespaces == ["a", "b"]
    git = loaded.profile(NetworkProfile.GIT_READ)
    assert git.allowDns and git.egress[0].ports[0].protocol == "TCP"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("sandbox: {imag: x}\n", "sandbox.imag"),
        ("networkProfiles: {none: {egress: [{cidr: 0.0.0.0/0, ports: [{port: 1}]}]}}\n", "networkProfiles"),
        ("networkProfiles: {git-read: {egress: [{cidr: 10.0.0.1/8, ports: [{port: 1}]}]}}\n", "cidr"),
        ("networkProfiles: {internet: {}}\n", "networkProfiles"),
        ("[1, 2]\n", "mapping"),
    ],
)
def test_bad_files_name_the_field(tmp_path, text, field):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as caught:
        config.load_config({config.ENV_CONFIG: str(path)})
    assert field in str(caught.value)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError):
        config.load_config({config.ENV_CONFIG: str(tmp_path / "absent.yaml")})


def test_policy_file_reloads_on_change_and_refuses_a_bad_one(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    path = tmp_path / "policy.yaml"
    path.write_text((repo / "configs" / "policy.yaml").read_text())
    source = config.PolicyFile(str(path))
    first = source.current()
    assert source.current() is first  # cached while unchanged
    path.write_text("not: [a policy\n")
    with pytest.raises(Exception):
        source.current()
    path.unlink()
    with pytest.raises(Exception):
        source.current()


def test_threads_asking_at_once_for_a_new_policy_parse_it_once(tmp_path, monkeypatch):
    """A burst's handler threads all ask for the policy when it is new (at startup, after an edit)."""
    import threading
    from pathlib import Path

    import safeagent.policy

    path = tmp_path / "policy.yaml"
    path.write_text((Path(__file__).resolve().parents[2] / "configs" / "policy.yaml").read_text())
    parsed, real = [], safeagent.policy.load_policy_files
    everyone_asked = threading.Barrier(8)

    def counted(source):
        parsed.append(source)
        return real(source)

    monkeypatch.setattr(safeagent.policy, "load_policy_files", counted)
    policy = config.PolicyFile(str(path))

    def ask():
        everyone_asked.wait(5)
        policy.current()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert parsed == [str(path)]


def test_policy_with_another_workspace_is_refused(tmp_path):
    from pathlib import Path

    from safeagent.policy import PolicyError

    text = (Path(__file__).resolve().parents[2] / "configs" / "policy.yaml").read_text()
    assert "\n  workspace: /workspace\n" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("\n  workspace: /workspace\n", "\n  workspace: /srv\n"))
    with pytest.raises(PolicyError, match="paths.workspace"):
        config.PolicyFile(str(path)).current()


# --- configuration that cannot disarm the sandbox (issue 11, item 6) ---------------------------

FULL = {"cpu": "1", "memory": "512Mi", "ephemeralStorage": "1Gi"}


def sandbox_with(**changes):
    return {"sandbox": changes}


@pytest.mark.parametrize("block", ["resources", "requests"])
@pytest.mark.parametrize("key", ["cpu", "memory", "ephemeralStorage"])
@pytest.mark.parametrize("zero", ["0", "0m", "0.0", "0Gi", "000", "-1", "", "lots"])
def test_a_zero_or_malformed_limit_or_request_is_refused(block, key, zero):
    values = {**FULL, key: zero}
    with pytest.raises(config.ConfigError, match=rf"sandbox\.{block}\.{key}"):
        config.parse_config(sandbox_with(**{block: values}))


@pytest.mark.parametrize("block", ["resources", "requests"])
@pytest.mark.parametrize("key", ["cpu", "memory", "ephemeralStorage"])
def test_a_block_that_leaves_a_key_out_is_refused(block, key):
    values = {name: value for name, value in FULL.items() if name != key}
    with pytest.raises(config.ConfigError, match=rf"sandbox\.{block}\.{key}: Field required"):
        config.parse_config(sandbox_with(**{block: values}))


@pytest.mark.parametrize("key", ["workspaceSizeLimit", "tmpSizeLimit", "shmSizeLimit", "memoryMargin"])
@pytest.mark.parametrize("zero", ["0", "0Mi", "0.0Gi", ""])
def test_a_zero_volume_size_is_refused(key, zero):
    with pytest.raises(config.ConfigError, match=rf"sandbox\.{key}"):
        config.parse_config(sandbox_with(**{key: zero}))


def test_left_out_blocks_get_limits_never_none():
    sandbox = config.parse_config({}).sandbox
    assert (sandbox.resources.cpu, sandbox.resources.memory, sandbox.resources.ephemeralStorage) == (
        "1", "512Mi", "1Gi",
    )
    assert sandbox.workspaceSizeLimit == "256Mi" and sandbox.tmpSizeLimit == "64Mi"


def test_the_default_uid_range_is_above_every_distribution_user():
    uid_range = config.parse_config({}).sandbox.uidRange
    assert (uid_range.first, uid_range.count, uid_range.last) == (200000, 65536, 265535)
    assert 65532 not in uid_range and 0 not in uid_range and 265535 in uid_range and 265536 not in uid_range


@pytest.mark.parametrize(
    ("first", "count", "problem"),
    [
        (0, 10, "sandbox.uidRange.first"),  # root
        (999, 10, "sandbox.uidRange.first"),  # a system user
        (1000, 0, "sandbox.uidRange.count"),
        (2**31 - 2, 2, "is above 2147483646"),  # ends one past the last usable UID
        (2**31 - 1, 1, "sandbox.uidRange.first"),
        (200000, -1, "sandbox.uidRange.count"),
    ],
)
def test_a_uid_range_with_root_system_users_or_past_2_31_is_refused(first, count, problem):
    with pytest.raises(config.ConfigError, match=re.escape(problem)):
        config.parse_config(sandbox_with(uidRange={"first": first, "count": count}))


@pytest.mark.parametrize(("first", "count"), [(1000, 1), (2**31 - 2, 1), (1000, 2**31 - 1001), (300000, 100000)])
def test_a_uid_range_inside_the_bounds_is_accepted(first, count):
    uid_range = config.parse_config(sandbox_with(uidRange={"first": first, "count": count})).sandbox.uidRange
    assert uid_range.last == first + count - 1 <= 2**31 - 2


def test_a_uid_range_refuses_unknown_keys_and_defaults_a_left_out_one():
    with pytest.raises(config.ConfigError, match="sandbox.uidRange.extra"):
        config.parse_config(sandbox_with(uidRange={"first": 300000, "count": 10, "extra": 1}))
    assert config.parse_config(sandbox_with(uidRange={"first": 300000})).sandbox.uidRange.count == 65536


@pytest.mark.parametrize(
    ("memory", "workspace", "tmp", "accepted"),
    [
        ("512Mi", "256Mi", "64Mi", True),
        ("512Mi", "448Mi", "64Mi", False),  # exactly the limit: nothing left for the command
        ("512Mi", "449Mi", "64Mi", False),
        ("1Gi", "958Mi", "63Mi", True),
        ("1G", "1000M", "1", False),  # decimal units: 1000M + 1 byte > 1G
        ("536870912", "0.25Gi", "64Mi", True),  # plain bytes against binary units
        ("512Mi", "300000k", "250000k", False),  # 550 MB > 512 MiB
    ],
)
def test_workspace_and_tmp_must_fit_below_the_memory_limit(memory, workspace, tmp, accepted):
    data = sandbox_with(
        resources={**FULL, "memory": memory},
        requests={"cpu": "100m", "memory": "1Mi", "ephemeralStorage": "1Mi"},
        workspaceSizeLimit=workspace, tmpSizeLimit=tmp, shmSizeLimit="1Mi", memoryMargin="1Mi",
    )
    if accepted:
        config.parse_config(data)
    else:
        with pytest.raises(config.ConfigError, match="must be below resources.memory"):
            config.parse_config(data)


def test_a_request_above_its_limit_is_refused():
    data = sandbox_with(resources=FULL, requests={**FULL, "memory": "513Mi"})
    with pytest.raises(config.ConfigError, match=r"requests\.memory \(513Mi\) is above resources\.memory"):
        config.parse_config(data)
    config.parse_config(sandbox_with(resources=FULL, requests=FULL))  # equal is fine


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "kube-anything", "default"])
def test_a_system_namespace_is_refused(namespace):
    with pytest.raises(config.ConfigError, match="cannot be a sandbox namespace"):
        config.parse_config({"namespaces": ["team-a", namespace]})


def test_no_namespaces_at_all_is_refused():
    with pytest.raises(config.ConfigError, match="namespaces"):
        config.parse_config({"namespaces": []})


def test_the_environment_passes_the_same_namespace_checks(tmp_path):
    policy = {config.ENV_POLICY: str(tmp_path / "p.yaml")}
    for value in ("kube-system", "team-a,default", ""):
        with pytest.raises(config.ConfigError, match="namespaces"):
            config.load_config({**policy, config.ENV_NAMESPACES: value})
    assert config.load_config({**policy, config.ENV_NAMESPACES: "team-a"}).namespaces == ["team-a"]


def test_the_operator_namespace_cannot_be_a_sandbox_namespace(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("namespaces: [team-a, safeagent-system]\n")
    env = {config.ENV_CONFIG: str(path), config.ENV_OPERATOR_NAMESPACE: "safeagent-system"}
    with pytest.raises(config.ConfigError, match="operator's own namespace"):
        config.load_config(env)
    env[config.ENV_OPERATOR_NAMESPACE] = "elsewhere"
    assert config.load_config(env).namespaces == ["team-a", "safeagent-system"]


# ------------------------------------------------ issue 10: profile destinations that open the world


@pytest.mark.parametrize(
    "cidr", ["169.254.169.254/32", "169.254.0.0/16", "fe80::/64", "fd00:ec2::254/128", "100.100.100.200/32"]
)
def test_a_profile_may_not_name_link_local_or_metadata_addresses(cidr):
    with pytest.raises(ConfigError, match="link-local or cloud metadata"):
        parse_config({"networkProfiles": {"git-read": {"egress": [{"cidr": cidr, "ports": [{"port": 443}]}]}}})


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_the_whole_internet_needs_an_explicit_opt_in(cidr):
    profile = {"egress": [{"cidr": cidr, "ports": [{"port": 443}]}]}
    with pytest.raises(ConfigError, match="allowAnyDestination"):
        parse_config({"networkProfiles": {"git-read": profile}})
    config = parse_config({"networkProfiles": {"git-read": {**profile, "allowAnyDestination": True}}})
    assert config.networkProfiles[NetworkProfile.GIT_READ].allowAnyDestination is True


def test_a_wide_destination_gets_the_metadata_ranges_cut_out():
    from safeagent.builders import build_network_policy

    config = parse_config({"networkProfiles": {"git-read": {
        "allowAnyDestination": True,
        "egress": [{"cidr": "0.0.0.0/0", "ports": [{"port": 443}]}, {"cidr": "::/0", "ports": [{"port": 443}]},
                   {"cidr": "10.0.0.0/8", "ports": [{"port": 443}]}]}}})
    blocks = [rule["to"][0]["ipBlock"] for rule in build_network_policy("ns", NetworkProfile.GIT_READ, config)["spec"]["egress"]]
    assert blocks[0] == {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "100.100.100.200/32", "168.63.129.16/32"]}
    assert blocks[1] == {"cidr": "::/0", "except": ["fe80::/10", "fd00:ec2::254/128"]}
    assert blocks[2] == {"cidr": "10.0.0.0/8"}


# --- placement of sandbox and review Pods ------------------------------------------------------


def test_placement_defaults_to_none_and_takes_label_selectors_and_tolerations():
    assert (config.parse_config({}).sandbox.nodeSelector, config.parse_config({}).sandbox.tolerations) == ({}, [])
    sandbox = config.parse_config(sandbox_with(
        nodeSelector={"safeagent.ca/sandbox": "true", "kubernetes.io/os": "linux", "pool": ""},
        tolerations=[
            {"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "agents"},
            {"operator": "Exists"},
            {"key": "flaky", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
        ],
    )).sandbox
    assert sandbox.nodeSelector["safeagent.ca/sandbox"] == "true"
    assert [toleration.pod_field() for toleration in sandbox.tolerations] == [
        {"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "agents"},
        {"operator": "Exists"},
        {"key": "flaky", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
    ]


@pytest.mark.parametrize(
    ("tolerations", "message"),
    [
        ([{"key": "a", "operator": "Maybe"}], r"sandbox\.tolerations\.0\.operator"),
        ([{"key": "a", "effect": "NoRun"}], r"sandbox\.tolerations\.0\.effect"),
        ([{"key": "a", "effects": "NoSchedule"}], r"sandbox\.tolerations\.0\.effects"),
        ([{"key": "a b"}], r"sandbox\.tolerations\.0\.key.*not a Kubernetes label key"),
        ([{"key": "a", "value": "not ok"}], r"sandbox\.tolerations\.0\.value.*not a Kubernetes label value"),
        ([{"value": "x"}], "without a key must use operator Exists"),
        ([{"key": "a", "operator": "Exists", "value": "x"}], "Exists takes no value"),
        ([{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 30}], "tolerationSeconds needs effect NoExecute"),
        ([{"key": "a", "effect": "NoExecute", "tolerationSeconds": -1}], r"sandbox\.tolerations\.0\.tolerationSeconds"),
        ({"key": "a"}, r"sandbox\.tolerations"),
    ],
)
def test_a_toleration_the_api_server_would_refuse_is_refused(tolerations, message):
    with pytest.raises(config.ConfigError, match=message):
        config.parse_config(sandbox_with(tolerations=tolerations))


@pytest.mark.parametrize(
    "selector",
    [
        {"bad key": "x"},
        {"a/b/c": "x"},
        {"Example.com/x": "y"},
        {"x" * 64: "y"},
        {("a" * 60 + ".") * 5 + "x/y": "z"},  # a prefix over 253 characters
        {"a": "bad value"},
        {"a": "-leading"},
        {"a": "y" * 64},
        {"a": 1},
    ],
)
def test_a_node_selector_that_is_not_labels_is_refused(selector):
    with pytest.raises(config.ConfigError, match=r"sandbox\.nodeSelector"):
        config.parse_config(sandbox_with(nodeSelector=selector))


def test_retention_defaults_keep_jobs_a_week_and_uploads_an_hour():
    retention = parse_config({}).retention
    assert (retention.finishedJobSeconds, retention.sourceGraceSeconds, retention.sweepIntervalSeconds) == (
        7 * 24 * 3600, 3600, 300)


@pytest.mark.parametrize(("retention", "field"), [
    ({"finishedJobSeconds": -1}, "retention.finishedJobSeconds"),
    ({"sourceGraceSeconds": 1}, "retention.sourceGraceSeconds"),
    ({"sourceGraceSeconds": 599}, "retention.sourceGraceSeconds"),
    ({"sweepIntervalSeconds": 0}, "retention.sweepIntervalSeconds"),
    ({"keepForever": True}, "retention.keepForever"),
])
def test_retention_values_out_of_range_are_refused(retention, field):
    with pytest.raises(ConfigError, match=field):
        parse_config({"retention": retention})


def test_zero_keeps_jobs_and_uploads():
    retention = parse_config({"retention": {"finishedJobSeconds": 0, "sourceGraceSeconds": 0}}).retention
    assert retention.finishedJobSeconds == 0 and retention.sourceGraceSeconds == 0


@pytest.mark.parametrize(("shm", "margin", "accepted"), [("64Mi", "32Mi", True), ("64Mi", "192Mi", False), ("193Mi", "1Mi", False)])
def test_dev_shm_and_the_runner_margin_count_against_the_memory_limit_too(shm, margin, accepted):
    # The defaults: 256Mi + 64Mi of the 512Mi limit, with 192Mi left for /dev/shm, the margin and the command.
    data = sandbox_with(shmSizeLimit=shm, memoryMargin=margin)
    if accepted:
        sandbox = config.parse_config(data).sandbox
        assert (sandbox.shmSizeLimit, sandbox.memoryMargin) == (shm, margin)
    else:
        with pytest.raises(config.ConfigError, match="memoryMargin .* must be below resources.memory"):
            config.parse_config(data)


@pytest.mark.parametrize("pids", [{"max": 15, "required": True}, {"max": 70000, "required": True}])
def test_a_pids_bound_out_of_range_or_half_given_is_refused(pids):
    with pytest.raises(config.ConfigError, match=r"sandbox\.pids"):
        config.parse_config(sandbox_with(pids=pids))
