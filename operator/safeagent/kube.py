"""The only module that talks to the Kubernetes API.

It wraps the official `kubernetes` client and turns its exceptions into a few domain errors, so
the reconcile logic decides about retries by type alone:

  NotFound       404: the object is not there (often expected: "create it", "already deleted")
  AlreadyExists  409 on create: someone (usually our earlier self) created it first -> adopt
  Conflict       409 otherwise
  Invalid        400/403/422: the API refused the request; retrying the same request won't help
  Unavailable    429, 5xx, timeouts, connection errors: try again later

Every call is reported to an optional observer as (verb, resource, error or None); the operator
counts them in its metrics (safeagent.metrics). Object names never reach the observer.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from safeagent.models import GROUP, VERSION, Identity

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5, 30)  # connect, read seconds for every call
POD_EVENTS_LIMIT = 100  # the kubelet aggregates repeats into one Event with a count
POD_LIST_PAGE = 500
# A list of objects' metadata only (no data): what the retention sweep reads of uploaded sources.
PARTIAL_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

CallObserver = Callable[[str, str, Exception | None], None]


@dataclasses.dataclass(frozen=True)
class Access:
    """The API server's answer to "may this user do that?": allowed, and why (the authorizer's words)."""

    allowed: bool
    reason: str = ""


class KubeError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


class AlreadyExists(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


class Unavailable(KubeError):
    pass


class Kube(Protocol):
    """What reconcile needs from the API; tests substitute an in-memory fake."""

    def get_job(self, namespace: str, name: str) -> dict[str, Any]: ...
    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def get_approval(self, namespace: str, name: str) -> dict[str, Any]: ...
    def create_approval(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch_approval_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]: ...
    def list_jobs(self, namespace: str, limit: int, after: str | None = None) -> tuple[list[dict[str, Any]], str | None]: ...
    def delete_job(self, namespace: str, name: str, uid: str) -> None: ...
    def list_configmap_metadata(
        self, namespace: str, selector: str, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...
    def delete_configmap(self, namespace: str, name: str, uid: str) -> None: ...
    def get_persistent_volume_claim(self, namespace: str, name: str) -> dict[str, Any]: ...
    def may_get(self, namespace: str, user: Identity, resource: str, name: str) -> Access: ...
    def list_pod_events(self, namespace: str, pod_uid: str) -> list[dict[str, Any]]: ...
    def get_canary_address(self, namespace: str, service: str) -> str: ...
    def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...
    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def claim_pod(self, namespace: str, name: str, resource_version: str, metadata: dict[str, Any]) -> dict[str, Any]: ...
    def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> None: ...
    def read_pod_log(self, namespace: str, name: str, container: str, limit_bytes: int) -> str: ...
    def follow_pod_log(self, namespace: str, name: str, container: str, seconds: float) -> Iterator[bytes]: ...
    def apply_network_policy(self, body: dict[str, Any]) -> None: ...
    def post_event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None: ...


def _translate(error: Exception, what: str, creating: bool = False) -> KubeError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        status = error.status
        detail = f"{what}: HTTP {status} {error.reason}"
        try:
            detail = f"{what}: {json.loads(error.body or '').get('message', detail)}"
        except (TypeError, ValueError, AttributeError):
            pass
        if status == 404:
            return NotFound(detail, status)
        if status == 409:
            return AlreadyExists(detail, status) if creating else Conflict(detail, status)
        if status in (400, 403, 422):
            return Invalid(detail, status)
        return Unavailable(detail, status)
    return Unavailable(f"{what}: {type(error).__name__}: {error}")


def operation(what: str) -> tuple[str, str]:
    """("patch", "sandboxjobs/status") from "patch sandboxjobs/NAME/status": no object name."""
    verb, _, target = what.partition(" ")
    parts = target.split("/")
    resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    return verb, resource


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeApi:
    """The `Kube` protocol on the real API server."""

    def __init__(self, api_client: Any | None = None, observer: CallObserver | None = None) -> None:
        from kubernetes import client, config

        self._observer = observer
        if api_client is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]  # the client is untyped
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            api_client = client.ApiClient()
        self._client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._networking = client.NetworkingV1Api(api_client)
        self._discovery = client.DiscoveryV1Api(api_client)
        self._authorization = client.AuthorizationV1Api(api_client)

    def _call(self, what: str, function: Any, *args: Any, creating: bool = False, **kwargs: Any) -> Any:
        try:
            timeout = kwargs.pop("_request_timeout", REQUEST_TIMEOUT)
            result = function(*args, _request_timeout=timeout, **kwargs)
        except Exception as error:  # every client failure becomes a domain error
            translated = _translate(error, what, creating)
            self._observe(what, translated)
            raise translated from error
        self._observe(what, None)
        return result

    def _observe(self, what: str, error: KubeError | None) -> None:
        if self._observer is None:
            return
        try:
            self._observer(*operation(what), error)
        except Exception:  # counting must never turn a good call into a failed one
            log.exception("api call observer failed")

    def _plain(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self._client.sanitize_for_serialization(obj)

    def _read(self, what: str, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A read of a built-in object as the JSON the server sent, without the client's typed
        models: building a V1Pod and turning it back into a dict cost about 5 ms of CPU a read,
        the largest share of the operator's own CPU under a burst (docs/bench.md)."""
        response = self._call(what, function, *args, _preload_content=False, **kwargs)
        try:
            answer: dict[str, Any] = json.loads(response.data)
        except (ValueError, TypeError, AttributeError) as error:
            unreadable = Unavailable(f"{what}: unreadable answer: {error}")
            self._observe(what, unreadable)
            raise unreadable from None
        return answer

    # custom resources

    def _get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self._plain(self._call(
            f"get {plural}/{name}",
            self._custom.get_namespaced_custom_object,
            GROUP, VERSION, namespace, plural, name,
        ))

    def _patch_custom_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        self._call(
            f"patch {plural}/{name}/status",
            self._custom.patch_namespaced_custom_object_status,
            GROUP, VERSION, namespace, plural, name, {"status": status},
        )

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get_custom("sandboxjobs", namespace, name)

    def list_jobs(self, namespace: str, limit: int, after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the namespace's SandboxJobs (at most `limit`) and the token of the next (None: last)."""
        kwargs: dict[str, Any] = {"limit": limit}
        if after:
            kwargs["_continue"] = after
        page = self._plain(self._call(
            "list sandboxjobs", self._custom.list_namespaced_custom_object,
            GROUP, VERSION, namespace, "sandboxjobs", **kwargs,
        ))
        return list(page.get("items") or []), (page.get("metadata") or {}).get("continue") or None

    def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete a SandboxJob, only if the object under `name` is `uid` (else Conflict). Background
        propagation: the garbage collector removes what it owns (its Approval)."""
        self._call(
            f"delete sandboxjobs/{name}", self._custom.delete_namespaced_custom_object,
            GROUP, VERSION, namespace, "sandboxjobs", name,
            body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
        )

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._patch_custom_status("sandboxjobs", namespace, name, status)

    def get_approval(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get_custom("approvals", namespace, name)

    def create_approval(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body["metadata"]
        return self._plain(self._call(
            f"create approvals/{metadata['name']}",
            self._custom.create_namespaced_custom_object,
            GROUP, VERSION, metadata["namespace"], "approvals", body,
            creating=True,
        ))

    def patch_approval_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._patch_custom_status("approvals", namespace, name, status)

    # sources

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        """A ConfigMap as stored: `data` (text) and `binaryData` (base64) under their API names."""
        return self._read(f"get configmaps/{name}", self._core.read_namespaced_config_map, name, namespace)

    def list_configmap_metadata(
        self, namespace: str, selector: str, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the metadata (no data) of the ConfigMaps matching the label `selector`, and
        the token of the next page (None: last)."""
        kwargs: dict[str, Any] = {"label_selector": selector, "limit": limit}
        if after:
            kwargs["_continue"] = after
        page = self._read(
            "list configmaps", self._core.list_namespaced_config_map, namespace,
            _headers={"Accept": PARTIAL_METADATA_LIST}, **kwargs,
        )
        return list(page.get("items") or []), (page.get("metadata") or {}).get("continue") or None

    def delete_configmap(self, namespace: str, name: str, uid: str) -> None:
        """Delete a ConfigMap, only if the object under `name` is `uid` (else Conflict)."""
        self._call(
            f"delete configmaps/{name}", self._core.delete_namespaced_config_map, name, namespace,
            body={"preconditions": {"uid": uid}},
        )

    def get_persistent_volume_claim(self, namespace: str, name: str) -> dict[str, Any]:
        """Read only to tell whether a job's volume source exists."""
        return self._read(
            f"get persistentvolumeclaims/{name}", self._core.read_namespaced_persistent_volume_claim, name, namespace,
        )
    def may_get(self, namespace: str, user: Identity, resource: str, name: str) -> Access:
        """Whether `user` (with its groups) may `get` the core-group `resource` NAME in `namespace`:
        a LocalSubjectAccessReview, so the operator needs the right to ask only in its namespaces."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": namespace},
            "spec": {
                "user": user.username,
                "uid": user.uid or None,
                "groups": list(user.groups),
                "resourceAttributes": {
                    "namespace": namespace, "verb": "get", "group": "", "resource": resource, "name": name,
                },
            },
        }
        answer = self._plain(self._call(
            "create localsubjectaccessreviews",
            self._authorization.create_namespaced_local_subject_access_review,
            namespace, review,
        ))
        status = answer.get("status") or {}
        reason = status.get("reason") or status.get("evaluationError") or ""
        return Access(bool(status.get("allowed")) and not status.get("denied"), str(reason))

    def get_canary_address(self, namespace: str, service: str) -> str:
        """The address of the one ready Pod behind the canary's Service (NotFound unless exactly one).

        The pre-flight talks to the Pod itself, not to the Service's cluster IP: kube-proxy
        refuses a Service port that has no ready endpoint, and during a rollout two canaries
        stand behind one address; either would give a refusal that is not the enforcer's."""
        slices = self._read(
            "list endpointslices", self._discovery.list_namespaced_endpoint_slice, namespace,
            label_selector=f"kubernetes.io/service-name={service}",
        )
        addresses = sorted({
            str(address)
            for item in slices.get("items") or [] if item.get("addressType") == "IPv4"
            for endpoint in item.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is True
            and not (endpoint.get("conditions") or {}).get("terminating")
            for address in (endpoint.get("addresses") or [])[:1]
        })
        if len(addresses) != 1:
            raise NotFound(
                f"service {namespace}/{service} has {len(addresses)} ready canary Pods; the pre-flight needs exactly one"
            )
        return addresses[0]

    # pods

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self._read(f"get pods/{name}", self._core.read_namespaced_pod, name, namespace)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Every Pod of the namespace matching the label `selector` (all pages)."""
        pods: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": POD_LIST_PAGE}
            if after:
                kwargs["_continue"] = after
            page = self._read("list pods", self._core.list_namespaced_pod, namespace, **kwargs)
            pods.extend(page.get("items") or [])
            after = (page.get("metadata") or {}).get("continue") or None
            if not after:
                return pods

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body["metadata"]
        pod = self._call(
            f"create pods/{metadata['name']}",
            self._core.create_namespaced_pod,
            metadata["namespace"], body,
            creating=True,
        )
        return self._plain(pod)

    def claim_pod(self, namespace: str, name: str, resource_version: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge `metadata` (labels, annotations, owner references) into the Pod, only if it is still at
        `resource_version` (else Conflict): of two claims on one Pod, one wins."""
        body = {"metadata": {**metadata, "resourceVersion": resource_version}}
        pod = self._call(f"patch pods/{name}", self._core.patch_namespaced_pod, name, namespace, body)
        return self._plain(pod)

    def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete a Pod; with `uid`, only if the Pod under `name` is that object (else Conflict)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        self._call(
            f"delete pods/{name}",
            self._core.delete_namespaced_pod,
            name, namespace,
            body=body,
            grace_period_seconds=0,
            propagation_policy="Background",
        )

    def read_pod_log(self, namespace: str, name: str, container: str, limit_bytes: int) -> str:
        text: str = self._call(
            f"get pods/{name}/log",
            self._core.read_namespaced_pod_log,
            name, namespace,
            container=container,
            limit_bytes=limit_bytes,
        )
        return text

    def follow_pod_log(self, namespace: str, name: str, container: str, seconds: float) -> Iterator[bytes]:
        """A container's log line by line as it is written (the kubelet streams it), for at most
        `seconds`; ends when the container does. Each line is handed out as it comes, without its newline."""
        response = self._call(
            f"get pods/{name}/log", self._core.read_namespaced_pod_log, name, namespace,
            container=container, follow=True, _preload_content=False, _request_timeout=(5, seconds),
        )
        deadline = time.monotonic() + seconds
        buffer = b""
        try:
            for chunk in response.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                yield from lines
                if time.monotonic() > deadline:
                    return
        finally:
            response.release_conn()

    def list_pod_events(self, namespace: str, pod_uid: str) -> list[dict[str, Any]]:
        """The Events about one Pod (by UID): the kubelet reports volume trouble only there."""
        events = self._read(
            "list events",
            self._core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.uid={pod_uid}",
            limit=POD_EVENTS_LIMIT,
        )
        return list(events.get("items") or [])

    # network policies

    def apply_network_policy(self, body: dict[str, Any]) -> None:
        """Create the policy, or replace it when its spec or labels differ from `body`.

        Read first: it exists and is right for every job but a namespace's first of its profile,
        so that is one request, not a refused create and then the read."""
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        try:
            current = self._read(
                f"get networkpolicies/{name}", self._networking.read_namespaced_network_policy, name, namespace,
            )
        except NotFound:
            try:
                self._call(
                    f"create networkpolicies/{name}",
                    self._networking.create_namespaced_network_policy,
                    namespace, body,
                    creating=True,
                )
                return
            except AlreadyExists:  # made since the read (another job of the profile): check it
                current = self._read(
                    f"get networkpolicies/{name}", self._networking.read_namespaced_network_policy, name, namespace,
                )
        if _same_policy(current, body):
            return
        replacement = {
            **body,
            "metadata": {**metadata, "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        self._call(
            f"replace networkpolicies/{name}",
            self._networking.replace_namespaced_network_policy,
            name, namespace, replacement,
        )

    # events

    def post_event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        metadata = involved["metadata"]
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": involved.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "safeagent-operator"},
            "reportingComponent": "safeagent.ca/operator",
            "reportingInstance": "safeagent-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._call("create events", self._core.create_namespaced_event, metadata["namespace"], body)


def _same_policy(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Compare what we manage; the server adds defaults we never set, so compare after pruning."""

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: prune(v) for k, v in value.items() if v not in (None, [], {})}
        if isinstance(value, list):
            return [prune(v) for v in value]
        return value

    labels_ok = all(
        current["metadata"].get("labels", {}).get(k) == v
        for k, v in desired["metadata"].get("labels", {}).items()
    )
    current_spec, desired_spec = prune(current.get("spec", {})), prune(desired["spec"])
    return labels_ok and current_spec == desired_spec
