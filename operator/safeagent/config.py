"""Operator configuration: where it comes from and what every key means.

Contract with the Helm chart (the chart renders the file and sets the environment):

  Environment
    SAFEAGENT_CONFIG      path of the YAML configuration file below
                          (default /etc/safeagent/config.yaml; a missing file at the default path
                          means "all defaults", a missing file at an explicit path is an error)
    SAFEAGENT_POLICY      path of the command policy file (safeagent.policy format); overrides the
                          file's `policyPath` (default /etc/safeagent/policy.yaml)
    SAFEAGENT_NAMESPACES  comma-separated namespaces to watch; overrides `namespaces`
                          (empty = every namespace, which needs cluster-wide RBAC that the chart
                          does not grant). Read by `python -m safeagent.handlers`; the chart
                          instead passes `kopf run --namespace=...` for each sandbox namespace

  File (camelCase keys, unknown keys are refused with the field path):

    policyPath: /etc/safeagent/policy.yaml
    namespaces: [safeagent-sandbox]
    sandbox:
      image: safeagent/sandbox:dev
      imagePullPolicy: IfNotPresent      # Always | IfNotPresent | Never
      runtimeClassName: null             # e.g. gvisor or kata where the cluster has one
      resources:                         # limits of each sandbox container
        cpu: "1"
        memory: 512Mi
        ephemeralStorage: 1Gi
      requests: {cpu: 100m, memory: 128Mi, ephemeralStorage: 256Mi}
      workspaceSizeLimit: 256Mi          # emptyDir /workspace
      tmpSizeLimit: 64Mi                 # emptyDir /tmp
      sourceMaxFiles: 5000               # source-tree caps checked before copying
      sourceMaxBytes: 104857600
      launchGraceSeconds: 120            # scheduling + preparation budget on top of timeoutSeconds
    approvalTimeoutSeconds: 86400        # a Pending Approval older than this expires
    networkProfiles:                     # egress of each profile; `none` always denies everything
      model-only:
        egress: [{cidr: 10.96.0.0/12, ports: [{port: 443, protocol: TCP}]}]
        allowDns: false
      git-read: {egress: [], allowDns: false}
      package-mirror: {egress: [], allowDns: false}
    dns:                                 # where DNS lives, for profiles with allowDns: true
      namespace: kube-system
      podLabels: {k8s-app: kube-dns}

Profiles not listed get no egress at all (like `none`), so a forgotten profile fails closed.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from safeagent.models import NetworkProfile

DEFAULT_CONFIG_PATH = "/etc/safeagent/config.yaml"
DEFAULT_POLICY_PATH = "/etc/safeagent/policy.yaml"
ENV_CONFIG = "SAFEAGENT_CONFIG"
ENV_POLICY = "SAFEAGENT_POLICY"
ENV_NAMESPACES = "SAFEAGENT_NAMESPACES"
# Where the sandbox Pod mounts the workspace; the policy must check paths against the same place.
SANDBOX_WORKSPACE = "/workspace"


class ConfigError(ValueError):
    """The configuration file or environment is unusable; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantities(_Strict):
    cpu: str = Field(default="1", description="CPU (Kubernetes quantity).")
    memory: str = Field(default="512Mi", description="Memory (Kubernetes quantity).")
    ephemeralStorage: str = Field(default="1Gi", description="Ephemeral storage (quantity).")


class SandboxConfig(_Strict):
    image: str = Field(default="safeagent/sandbox:dev", min_length=1)
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    runtimeClassName: str | None = None
    resources: Quantities = Quantities()
    requests: Quantities = Quantities(cpu="100m", memory="128Mi", ephemeralStorage="256Mi")
    workspaceSizeLimit: str = "256Mi"
    tmpSizeLimit: str = "64Mi"
    sourceMaxFiles: int = Field(default=5000, ge=1)
    sourceMaxBytes: int = Field(default=100 * 1024 * 1024, ge=1)
    launchGraceSeconds: int = Field(default=120, ge=10, le=3600)


class Port(_Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class EgressRule(_Strict):
    cidr: str
    ports: list[Port] = Field(min_length=1)

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError as error:
            raise ValueError(f"not a CIDR network address: {error}") from None


class ProfileConfig(_Strict):
    egress: list[EgressRule] = []
    allowDns: bool = False


class DnsConfig(_Strict):
    namespace: str = "kube-system"
    podLabels: dict[str, str] = {"k8s-app": "kube-dns"}
    ports: list[Port] = [Port(port=53, protocol="UDP"), Port(port=53, protocol="TCP")]


class OperatorConfig(_Strict):
    policyPath: str = DEFAULT_POLICY_PATH
    namespaces: list[str] = ["safeagent-sandbox"]
    sandbox: SandboxConfig = SandboxConfig()
    approvalTimeoutSeconds: int = Field(default=86400, ge=60)
    networkProfiles: dict[NetworkProfile, ProfileConfig] = {}
    dns: DnsConfig = DnsConfig()

    @field_validator("networkProfiles")
    @classmethod
    def _none_stays_closed(
        cls, value: dict[NetworkProfile, ProfileConfig]
    ) -> dict[NetworkProfile, ProfileConfig]:
        closed = value.get(NetworkProfile.NONE)
        if closed is not None and (closed.egress or closed.allowDns):
            raise ValueError("the 'none' profile cannot allow egress")
        return value

    def profile(self, profile: NetworkProfile) -> ProfileConfig:
        """Egress of a profile; `none` and unconfigured profiles get nothing."""
        if profile is NetworkProfile.NONE:
            return ProfileConfig()
        return self.networkProfiles.get(profile, ProfileConfig())


def _format_errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
        for item in error.errors()
    )


def parse_config(data: object, origin: str = "configuration") -> OperatorConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    try:
        return OperatorConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {_format_errors(error)}") from None


def load_config(environ: dict[str, str] | None = None) -> OperatorConfig:
    """Read the file named by SAFEAGENT_CONFIG (or the default path) and apply the environment."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_CONFIG)
    path = Path(explicit or DEFAULT_CONFIG_PATH)
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: cannot read: {error}") from None
        config = parse_config(data, str(path))
    elif explicit:
        raise ConfigError(f"{path}: {ENV_CONFIG} names a file that does not exist")
    else:
        config = OperatorConfig()
    overrides: dict[str, object] = {}
    if env.get(ENV_POLICY):
        overrides["policyPath"] = env[ENV_POLICY]
    if ENV_NAMESPACES in env:
        overrides["namespaces"] = [ns.strip() for ns in env[ENV_NAMESPACES].split(",") if ns.strip()]
    return config.model_copy(update=overrides) if overrides else config


class PolicyFile:
    """The command policy at `path`, re-read whenever the file changes (a ConfigMap update).

    `current()` raises PolicyError while the file is unreadable or invalid, so jobs wait (and,
    past their deadline, fail) rather than run under a policy nobody wrote.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._policy: object | None = None

    def current(self) -> object:
        from safeagent.policy import PolicyError, load_policy

        try:
            info = os.stat(self.path)
        except OSError as error:
            raise PolicyError(f"{self.path}: {error.strerror}") from None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp != self._stamp or self._policy is None:
            self._policy = None
            policy = load_policy(self.path)
            # Path rules are checked against the policy's workspace; the sandbox Pod mounts the
            # workspace at a fixed place. A policy that assumes another one would check paths
            # against the wrong root, so it is refused rather than half-applied.
            if policy.paths.workspace != SANDBOX_WORKSPACE:
                raise PolicyError(
                    f"{self.path}: paths.workspace is {policy.paths.workspace!r}; the sandbox mounts "
                    f"the workspace at {SANDBOX_WORKSPACE!r}, so the policy must use that"
                )
            self._policy = policy
            self._stamp = stamp
        return self._policy
