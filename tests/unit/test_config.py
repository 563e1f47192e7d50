"""Operator configuration: file + environment contract with the Helm chart."""

from __future__ import annotations

import pytest

from safeagent import config
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


def test_policy_with_another_workspace_is_refused(tmp_path):
    from pathlib import Path

    from safeagent.policy import PolicyError

    text = (Path(__file__).resolve().parents[2] / "configs" / "policy.yaml").read_text()
    assert "\n  workspace: /workspace\n" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("\n  workspace: /workspace\n", "\n  workspace: /srv\n"))
    with pytest.raises(PolicyError, match="paths.workspace"):
        config.PolicyFile(str(path)).current()
