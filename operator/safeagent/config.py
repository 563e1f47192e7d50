"""Operator configuration: where it comes from and what every key means.

Contract with the Helm chart (the chart renders the file and sets the environment):

  Environment
    SAFEAGENT_CONFIG      path of the YAML configuration file below
                          (default /etc/safeagent/config.yaml; a missing file at the default path
                          means "all defaults", a missing file at an explicit path is an error)
    SAFEAGENT_POLICY      path of the command policy file (safeagent.policy format); overrides the
                          file's `policyPath` (default /etc/safeagent/policy.yaml)
    SAFEAGENT_NAMESPACES  comma-separated namespaces to watch; overrides `namespaces`. Read by
                          `python -m safeagent.handlers`; the chart instead passes
                          `kopf run --namespace=...` for each sandbox namespace
    SAFEAGENT_OPERATOR_NAMESPACE
                          the namespace the operator runs in (the chart sets it from the Pod's
                          own metadata); a sandbox namespace may not be that one

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
      shmSizeLimit: 64Mi                 # emptyDir /dev/shm
      memoryMargin: 32Mi                 # the runner stops a command that leaves less memory than this
      pids: {max: 1024, required: true}  # the PID bound the runner proves before a command
      sourceMaxFiles: 5000               # source-tree caps checked before copying
      sourceMaxBytes: 104857600
      launchGraceSeconds: 300            # scheduling + preparation + egress proof, on top of timeoutSeconds
      sourceGraceSeconds: 60             # a source that does not exist ends the job after this long
      uidRange: {first: 200000, count: 65536}  # each sandbox Pod runs as a UID of its own from here
      nodeSelector: {}                   # node labels every sandbox and review Pod must match
      tolerations: []                    # e.g. [{key: safeagent.ca/sandbox, operator: Exists,
                                         #        effect: NoSchedule}] for nodes tainted for sandboxes
    approvalTimeoutSeconds: 86400        # a Pending Approval older than this expires
    retention:                           # the clean-up sweep (safeagent.reconcile.retention)
      finishedJobSeconds: 604800         # a final SandboxJob is deleted this long after completionTime (0: kept)
      sourceGraceSeconds: 3600           # an uploaded source object no job refers to is deleted once it is
                                         # this old and has been unreferenced this long (0: kept)
      sweepIntervalSeconds: 300          # one sweep of every sandbox namespace this often
    metrics: {enabled: true, port: 9090} # Prometheus /metrics (off when the file does not say)
    egressCheck:                         # the pre-flight (safeagent.sandbox.preflight); required to run
      deadlineSeconds: 30                # wait for proof: 30 s + 2 s per unfinished sandbox Pod,
      perPendingPodSeconds: 2            # at most maxDeadlineSeconds (below launchGraceSeconds)
      maxDeadlineSeconds: 240
      proof: refusal                     # or silence, for enforcers that drop (docs/threat-model.md)
      canary: {namespace: safeagent-system, service: safeagent-canary,
               podLabels: {app.kubernetes.io/component: canary}, openPort: 8081, closedPort: 8082}
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

What cannot disarm the sandbox by accident (each refused with the field's path):
  - a limit or request of "0" (Kubernetes reads a zero limit as "no limit": the Pod would run
    without a memory or CPU cap), a negative or malformed quantity, or a resources/requests block
    that leaves one of cpu, memory, ephemeralStorage out (a block left out entirely gets the
    defaults above, which are limits, never "none");
  - a request above its limit (the API server would refuse every sandbox Pod);
  - workspaceSizeLimit + tmpSizeLimit + shmSizeLimit + memoryMargin not below resources.memory:
    the three volumes are memory-backed, so they count against the memory limit, and the margin
    is what the runner keeps to list the workspace and write its record however full they are;
  - a uidRange that starts below 1000 (root and the system users) or ends past 2^31-2;
  - a nodeSelector label or toleration the API server would refuse (a key that is not a label
    key, a value that is not a label value, operator Exists with a value, an empty key without
    Exists, tolerationSeconds on an effect other than NoExecute): every sandbox Pod would be
    refused;
  - a sandbox namespace that is a system namespace: `kube-*` (kube-system, kube-public,
    kube-node-lease ...), `default`, or the operator's own namespace; and no namespaces at all
    (that would mean every namespace).

Over 400 lines on purpose: the contract above and the guards below are one reviewable unit; every
guard names the field it protects, and splitting them from the schema would hide which is which.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from safeagent.models import NetworkProfile
from safeagent.quantity import QuantityError, parse_quantity
from safeagent.sandbox.contract import EgressProof

if TYPE_CHECKING:  # the policy package is imported where a policy is loaded, not with the configuration
    from safeagent.policy import Policy

DEFAULT_CONFIG_PATH = "/etc/safeagent/config.yaml"
DEFAULT_POLICY_PATH = "/etc/safeagent/policy.yaml"
ENV_CONFIG = "SAFEAGENT_CONFIG"
ENV_POLICY = "SAFEAGENT_POLICY"
ENV_NAMESPACES = "SAFEAGENT_NAMESPACES"
ENV_OPERATOR_NAMESPACE = "SAFEAGENT_OPERATOR_NAMESPACE"
# Where the sandbox Pod mounts the workspace; the policy must check paths against the same place.
SANDBOX_WORKSPACE = "/workspace"
# How long a job waits for a source that does not exist (it may be applied after the job, in the
# same `kubectl apply`) before it fails SourceNotFound.
DEFAULT_SOURCE_GRACE_SECONDS = 60


class ConfigError(ValueError):
    """The configuration file or environment is unusable; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_quantity(value: str) -> str:
    """A quantity above zero, kept as written (the Pod gets the same text)."""
    try:
        amount = parse_quantity(value)
    except QuantityError as error:
        raise ValueError(str(error)) from None
    if amount <= 0:
        raise ValueError(
            f"{value!r} is not above zero; Kubernetes reads a zero limit as no limit at all"
        )
    return value


PositiveQuantity = Annotated[str, AfterValidator(_positive_quantity)]

# A label key (also a taint's key): an optional DNS-subdomain prefix of at most 253 characters and
# "/", then a name of at most 63; a label value is such a name or empty.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY = re.compile(rf"((?P<prefix>{_DNS_LABEL}(\.{_DNS_LABEL})*)/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")


def _label_key(value: str) -> str:
    match = _LABEL_KEY.fullmatch(value)
    if not match or len(match.group("prefix") or "") > 253:
        raise ValueError(f"{value!r} is not a Kubernetes label key")
    return value


def _label_value(value: str) -> str:
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes label value")
    return value


def _label_key_or_empty(value: str) -> str:
    return _label_key(value) if value else value


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


class Quantities(_Strict):
    """Every key is required: a block that names some of them must name all three."""

    cpu: PositiveQuantity = Field(description="CPU (Kubernetes quantity).")
    memory: PositiveQuantity = Field(description="Memory (Kubernetes quantity).")
    ephemeralStorage: PositiveQuantity = Field(description="Ephemeral storage (quantity).")


class Toleration(_Strict):
    """A toleration of sandbox Pods, held to the rules the API server would apply to the Pod.

    Empty strings mean what they mean to Kubernetes: no key (with Exists: every taint), no value,
    no effect (every effect).
    """

    key: Annotated[str, AfterValidator(_label_key_or_empty)] = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: LabelValue = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    tolerationSeconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _accepted_by_the_api_server(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists takes no value")
        if self.tolerationSeconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds needs effect NoExecute")
        return self

    def pod_field(self) -> dict[str, str | int]:
        """The toleration as a Pod spec holds it: empty fields left out, as the API server does."""
        return {name: value for name, value in self.model_dump().items() if value not in ("", None)}


# What must fit below the sandbox's memory limit with room to spare for the command itself.
MEMORY_BUDGET = ("workspaceSizeLimit", "tmpSizeLimit", "shmSizeLimit", "memoryMargin")


class PidsConfig(_Strict):
    """The PID bound every sandbox Pod must be under (the kubelet's podPidsLimit on the sandbox
    nodes); the runner proves it before each command (safeagent.sandbox.limits)."""

    # The runner starts up to this many threads: refused before that, a bound is in force. The
    # proof costs about 40 ms per 1,000 on the test bed, so a large `max` makes every command slower.
    max: int = Field(default=1024, ge=16, le=65536)
    # No bound found: run nothing (ResourcesNotLimited). False: run, and record that there was none.
    required: bool = True


# The largest UID a Pod may run as: Kubernetes takes runAsUser as int64, but Linux keeps
# (uid_t)-1 = 2^32-1 for "no UID" and many tools read IDs as signed 32-bit numbers; 2^31-2 stays
# clear of both (and of 2^31-1, which some of them use for "no one").
MAX_SANDBOX_UID = 2**31 - 2
MIN_SANDBOX_UID = 1000


class UidRange(_Strict):
    """The UIDs sandbox Pods run as: each unfinished sandbox Pod of the operator holds one of its own.

    Per-user kernel limits (inotify instances and watches, RLIMIT_NPROC, RLIMIT_MSGQUEUE) count
    per UID on a node, so two sandboxes under one UID would share them (docs/threat-model.md).

    Default 200000-265535: above every UID a distribution hands to people and services
    (login.defs: up to 60000; 65534 nobody; 65532 the image's own `sandbox` user), so no file of
    the node or the image belongs to one of them, and far more UIDs than sandbox Pods that can
    exist at once (a node holds 110 Pods by default), so a Pod nearly always gets the UID its name
    hashes to and a launch practically never waits for a free one. It must not overlap the UIDs
    of anything else on the sandbox nodes: subordinate ID ranges in /etc/subuid (useradd hands
    them out from 100000, 65536 per user), the kubelet's user-namespace ranges, another
    safeagent release whose sandboxes share the nodes.
    """

    first: int = Field(default=200000, ge=MIN_SANDBOX_UID, le=MAX_SANDBOX_UID,
                       description="The first UID of the range (at least 1000: never root or a system user).")
    count: int = Field(default=65536, ge=1, le=MAX_SANDBOX_UID - MIN_SANDBOX_UID + 1,
                       description="How many UIDs the range holds: more than the sandbox Pods that can be "
                       "unfinished at once, or launches wait for a free one.")

    @model_validator(mode="after")
    def _ends_in_bounds(self) -> UidRange:
        if self.last > MAX_SANDBOX_UID:
            raise ValueError(f"first + count - 1 ({self.last}) is above {MAX_SANDBOX_UID} (2^31-2)")
        return self

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and not isinstance(uid, bool) and self.first <= uid <= self.last

    def preferred(self, pod_name: str) -> int:
        """The UID a Pod of this name gets when nobody holds it: a hash of the name into the range
        (the same in every operator process, so a restarted operator builds the same Pod)."""
        digest = int.from_bytes(hashlib.sha256(pod_name.encode()).digest()[:8], "big")
        return self.first + digest % self.count


class SandboxConfig(_Strict):
    image: str = Field(default="safeagent/sandbox:dev", min_length=1)
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    runtimeClassName: str | None = None
    resources: Quantities = Quantities(cpu="1", memory="512Mi", ephemeralStorage="1Gi")
    requests: Quantities = Quantities(cpu="100m", memory="128Mi", ephemeralStorage="256Mi")
    workspaceSizeLimit: PositiveQuantity = "256Mi"
    tmpSizeLimit: PositiveQuantity = "64Mi"
    shmSizeLimit: PositiveQuantity = "64Mi"
    memoryMargin: PositiveQuantity = "32Mi"
    pids: PidsConfig = PidsConfig()
    sourceMaxFiles: int = Field(default=5000, ge=1)
    sourceMaxBytes: int = Field(default=100 * 1024 * 1024, ge=1)
    launchGraceSeconds: int = Field(default=300, ge=10, le=3600)
    sourceGraceSeconds: int = Field(default=DEFAULT_SOURCE_GRACE_SECONDS, ge=5, le=3600)
    uidRange: UidRange = UidRange()  # a UID of its own for each sandbox Pod (safeagent.reconcile.uids)
    # Placement of every Pod that runs the sandbox image for a job (the sandbox and the review
    # Pod): the nodes reserved for sandboxes, e.g. those behind configs/nftables-agent.conf.
    nodeSelector: dict[LabelKey, LabelValue] = {}
    tolerations: list[Toleration] = []

    @model_validator(mode="after")
    def _limits_hold_together(self) -> SandboxConfig:
        for key in ("cpu", "memory", "ephemeralStorage"):
            request, limit = getattr(self.requests, key), getattr(self.resources, key)
            if parse_quantity(request) > parse_quantity(limit):
                raise ValueError(
                    f"requests.{key} ({request}) is above resources.{key} ({limit}): "
                    "the API server would refuse every sandbox Pod"
                )
        volumes = sum(parse_quantity(getattr(self, key)) for key in MEMORY_BUDGET)
        if volumes >= parse_quantity(self.resources.memory):
            parts = " + ".join(f"{key} ({getattr(self, key)})" for key in MEMORY_BUDGET)
            raise ValueError(
                f"{parts} must be below resources.memory ({self.resources.memory}): the workspace, /tmp "
                "and /dev/shm are memory-backed and count against the memory limit, and the margin is "
                "what the runner keeps to write its record when they are full"
            )
        return self


def system_namespace_problem(namespace: str, operator_namespace: str | None = None) -> str | None:
    """Why `namespace` may not hold sandbox Pods, or None.

    kube-* namespaces belong to Kubernetes itself; `default` is where objects land when nobody
    chose a namespace (and the operator would get Pod create/delete rights over everything
    there); the operator's own namespace would put untrusted commands beside the operator and
    give it Pod rights over itself.
    """
    if namespace.startswith("kube-"):
        return f"{namespace!r} is a Kubernetes system namespace"
    if namespace == "default":
        return "'default' is where objects land without a namespace; use a namespace of its own"
    if operator_namespace and namespace == operator_namespace:
        return f"{namespace!r} is the operator's own namespace"
    return None


class Port(_Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


# Destinations no profile may reach: link-local ranges (where cloud metadata services answer,
# 169.254.169.254 and friends) and the metadata addresses that sit outside them. A profile CIDR
# inside one is refused; a wider CIDR gets them cut out (NetworkPolicy ipBlock.except).
NEVER_EGRESS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure wire server
    )
)


def never_egress_inside(cidr: str) -> list[str]:
    """The NEVER_EGRESS ranges that lie inside `cidr` (to be excepted from it)."""
    network = ipaddress.ip_network(cidr)
    return [
        str(never) for never in NEVER_EGRESS
        if never.version == network.version and never.subnet_of(network)  # type: ignore[arg-type]
    ]


class EgressRule(_Strict):
    cidr: str
    ports: list[Port] = Field(min_length=1)

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"not a CIDR network address: {error}") from None
        for never in NEVER_EGRESS:
            if never.version == network.version and network.subnet_of(never):  # type: ignore[arg-type]
                raise ValueError(
                    f"{network} is inside {never} (link-local or cloud metadata): no profile may reach it"
                )
        return str(network)


class ProfileConfig(_Strict):
    egress: list[EgressRule] = []
    allowDns: bool = False
    # 0.0.0.0/0 or ::/0 (the whole internet) only with this explicit opt-in.
    allowAnyDestination: bool = False

    @model_validator(mode="after")
    def _world_needs_opt_in(self) -> ProfileConfig:
        for rule in self.egress:
            if ipaddress.ip_network(rule.cidr).prefixlen == 0 and not self.allowAnyDestination:
                raise ValueError(
                    f"{rule.cidr} is every address: set allowAnyDestination: true to mean it"
                )
        return self


class DnsConfig(_Strict):
    namespace: str = "kube-system"
    podLabels: dict[str, str] = {"k8s-app": "kube-dns"}
    ports: list[Port] = [Port(port=53, protocol="UDP"), Port(port=53, protocol="TCP")]


class CanaryConfig(_Strict):
    """Where the egress canary (safeagent.sandbox.canary) runs: a Service in front of its Pods."""

    namespace: str = Field(min_length=1)
    service: str = Field(min_length=1)
    podLabels: dict[str, str] = Field(min_length=1)
    openPort: int = Field(default=8081, ge=1, le=65535)
    closedPort: int = Field(default=8082, ge=1, le=65535)

    @model_validator(mode="after")
    def _two_ports(self) -> CanaryConfig:
        if self.openPort == self.closedPort:
            raise ValueError("openPort and closedPort must differ")
        return self


# What the launch budget keeps beside the longest wait for egress proof: scheduling, preparing the
# workspace, and the last round of the proof, which may end a few seconds past its deadline.
EGRESS_LAUNCH_MARGIN_SECONDS = 30


class EgressCheckConfig(_Strict):
    """The runner's pre-flight: the command runs only once its Pod is provably filtered.

    A Pod waits for the proof `deadline_for(pending)` seconds: `deadlineSeconds`, plus
    `perPendingPodSeconds` for every sandbox Pod of this operator that has not finished when the
    Pod is created (an enforcer programs a burst's Pods one sync at a time), never more than
    `maxDeadlineSeconds`. Past it the job ends EgressNotEnforced and nothing of it has run.
    """

    deadlineSeconds: int = Field(default=30, ge=1, le=600)
    perPendingPodSeconds: float = Field(default=2.0, ge=0, le=60)
    maxDeadlineSeconds: int = Field(default=240, ge=1, le=3000)
    proof: EgressProof = "refusal"
    canary: CanaryConfig

    @model_validator(mode="after")
    def _cap_above_base(self) -> EgressCheckConfig:
        if self.maxDeadlineSeconds < self.deadlineSeconds:
            raise ValueError("egressCheck.maxDeadlineSeconds must be at least egressCheck.deadlineSeconds")
        return self

    def deadline_for(self, pending: int) -> int:
        """Seconds a Pod created while `pending` other sandbox Pods are unfinished waits for proof."""
        grown = self.deadlineSeconds + self.perPendingPodSeconds * max(0, pending)
        return int(min(self.maxDeadlineSeconds, grown))


class MetricsConfig(_Strict):
    enabled: bool = False
    port: int = Field(default=9090, ge=1024, le=65535)
    address: str = "0.0.0.0"


# Retention (safeagent.reconcile.retention; docs/operations.md, "Retention").
DEFAULT_FINISHED_JOB_SECONDS = 7 * 24 * 3600
DEFAULT_SOURCE_RETENTION_GRACE_SECONDS = 3600
# A source object younger than this may be on its way to a job (the client uploads its chunks and
# manifest before it creates the job): no grace below it is accepted.
MIN_SOURCE_RETENTION_GRACE_SECONDS = 600


class RetentionConfig(_Strict):
    """What the operator's periodic sweep removes, and when; 0 keeps the objects for ever."""

    finishedJobSeconds: int = Field(
        default=DEFAULT_FINISHED_JOB_SECONDS, ge=0, le=10 * 365 * 24 * 3600,
        description="A SandboxJob in a final phase is deleted this many seconds after its completionTime "
        "(its Approval goes with it by owner reference; the audit line JobExpired is written first). 0: kept.",
    )
    sourceGraceSeconds: int = Field(
        default=DEFAULT_SOURCE_RETENTION_GRACE_SECONDS, ge=0, le=30 * 24 * 3600,
        description="An uploaded source object (sa-bundle-/sa-chunk- ConfigMap labelled by the client) that no "
        "job refers to is deleted once it is this old and the sweep has seen it unreferenced this long. 0: kept.",
    )
    sweepIntervalSeconds: int = Field(default=300, ge=10, le=24 * 3600,
                                      description="Seconds between two sweeps of the sandbox namespaces.")

    @field_validator("sourceGraceSeconds")
    @classmethod
    def _grace_covers_an_upload(cls, value: int) -> int:
        if 0 < value < MIN_SOURCE_RETENTION_GRACE_SECONDS:
            raise ValueError(
                f"must be 0 (keep) or at least {MIN_SOURCE_RETENTION_GRACE_SECONDS}: a younger object may "
                "belong to a job that is about to be created"
            )
        return value


class WarmPoolConfig(_Strict):
    """Warm sandbox Pods kept ready, each for one command (docs/warm-pool.md)."""

    size: dict[NetworkProfile, Annotated[int, Field(ge=0, le=50)]] = Field(
        default={}, description="Warm Pods kept ready per sandbox namespace, by network profile; 0 or absent: none "
        "(that profile's jobs all start a Pod of their own).")
    idleSeconds: int = Field(default=600, ge=30, le=24 * 3600,
                             description="A warm Pod nobody used for this long leaves and is replaced.")
    startingMax: int = Field(default=2, ge=1, le=50,
                             description="Warm Pods starting at once per sandbox namespace: a Pod's start costs "
                             "its node about a CPU-second (runtime, network, API server), and a pool refilling "
                             "all at once takes that from the jobs it serves.")
    operatorNamespace: str = Field(default="", description="The namespace of the operator's Pods: only they "
                                   "may open a warm Pod's channel (the chart sets it).")
    operatorPodLabels: dict[str, str] = Field(default={}, description="The labels of the operator's Pods.")

    @model_validator(mode="after")
    def _someone_may_deliver(self) -> WarmPoolConfig:
        if self.enabled and not (self.operatorNamespace and self.operatorPodLabels):
            raise ValueError("a warm pool needs operatorNamespace and operatorPodLabels: whom its Pods admit")
        return self

    @property
    def enabled(self) -> bool:
        return any(self.size.values())

    def size_of(self, profile: NetworkProfile) -> int:
        return self.size.get(profile, 0)


class OperatorConfig(_Strict):
    policyPath: str = DEFAULT_POLICY_PATH
    namespaces: list[str] = Field(default=["safeagent-sandbox"], min_length=1)
    sandbox: SandboxConfig = SandboxConfig()
    approvalTimeoutSeconds: int = Field(default=86400, ge=60)
    networkProfiles: dict[NetworkProfile, ProfileConfig] = {}
    dns: DnsConfig = DnsConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    warmPool: WarmPoolConfig = WarmPoolConfig()
    # None only outside a real installation (tests, local runs): the operator refuses to start
    # without it (safeagent.handlers), and the chart always sets it.
    egressCheck: EgressCheckConfig | None = None

    @model_validator(mode="after")
    def _check_fits_the_launch_budget(self) -> OperatorConfig:
        check = self.egressCheck
        if check and check.maxDeadlineSeconds + EGRESS_LAUNCH_MARGIN_SECONDS > self.sandbox.launchGraceSeconds:
            raise ValueError(
                f"egressCheck.maxDeadlineSeconds must be at least {EGRESS_LAUNCH_MARGIN_SECONDS} seconds below "
                "sandbox.launchGraceSeconds: the pre-flight runs inside the Pod's launch budget, after "
                "scheduling and preparation"
            )
        return self

    @field_validator("namespaces")
    @classmethod
    def _no_system_namespace(cls, value: list[str]) -> list[str]:
        for namespace in value:
            problem = system_namespace_problem(namespace)
            if problem:
                raise ValueError(f"{problem}: it cannot be a sandbox namespace")
        return value

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
    if overrides:
        # Validated again: an override must pass the same checks as the file.
        config = parse_config({**config.model_dump(), **overrides}, f"{path} with the environment")
    operator_namespace = env.get(ENV_OPERATOR_NAMESPACE)
    for namespace in config.namespaces:
        problem = system_namespace_problem(namespace, operator_namespace)
        if problem:
            raise ConfigError(f"namespaces: {problem}: it cannot be a sandbox namespace")
    return config


class PolicyFile:
    """The command policy at `path`, re-read whenever it or the policy it extends changes (a
    ConfigMap update).

    `current()` raises PolicyError while a file is unreadable or invalid, so jobs wait (and,
    past their deadline, fail) rather than run under a policy nobody wrote.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._sources: tuple[str, ...] = (path,)
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        self._policy: Policy | None = None
        self._lock = threading.Lock()

    def _stamp_of(self, sources: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
        from safeagent.policy import PolicyError

        stamps = []
        for source in sources:
            try:
                info = os.stat(source)
            except OSError as error:
                raise PolicyError(f"{source}: {error.strerror}") from None
            stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(stamps)

    def current(self) -> Policy:
        # One reader at a time: the handlers' threads of a burst would otherwise all parse the
        # file at once when it is new or changed (about 100 ms of CPU each; docs/bench.md).
        with self._lock:
            return self._current()

    def _current(self) -> Policy:
        from safeagent.policy import PolicyError, load_policy_files

        stamp = self._stamp_of(self._sources)
        if stamp != self._stamp or self._policy is None:
            self._policy = None
            policy, sources = load_policy_files(self.path)
            # Path rules are checked against the policy's workspace; the sandbox Pod mounts the
            # workspace at a fixed place. A policy that assumes another one would check paths
            # against the wrong root, so it is refused rather than half-applied.
            if policy.paths.workspace != SANDBOX_WORKSPACE:
                raise PolicyError(
                    f"{self.path}: paths.workspace is {policy.paths.workspace!r}; the sandbox mounts "
                    f"the workspace at {SANDBOX_WORKSPACE!r}, so the policy must use that"
                )
            self._policy = policy
            self._sources = sources
            self._stamp = stamp if sources == (self.path,) else self._stamp_of(sources)
        return self._policy
