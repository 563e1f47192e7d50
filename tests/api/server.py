"""A real kube-apiserver and etcd for the API tier: no kubelet, no scheduler, no nodes.

The binaries are the ones `make cluster` builds for the kind test bed (pinned in
tests/cluster/versions.env, built into $SAFEAGENT_CACHE/out); `make api-test` builds them first
if they are missing. SAFEAGENT_API_APISERVER names another kube-apiserver binary to try. Both listen on loopback ports picked at start, keep their data in a private
temporary directory and are stopped (and the directory removed) at the end of the session.

Who is who, as the server authenticates them:
  admin      a static token in group system:masters: the test itself, setting the scene
  operator   a token of the chart's own operator ServiceAccount (TokenRequest), so the operator
             under test runs with exactly the rights the chart's RBAC gives it
Authorization is RBAC, admission is the server's default chain (Pod Security included) plus the
chart's ValidatingAdmissionPolicies, and the CRDs are the repository's: the CEL rules, the status
subresource and the schema's pruning are the real ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSIONS = REPO / "tests" / "cluster" / "versions.env"
CACHE = Path(os.environ.get("SAFEAGENT_CACHE", Path.home() / ".cache" / "safeagent"))
START_TIMEOUT = 90.0


def versions() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in VERSIONS.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def binaries() -> tuple[Path, Path]:
    """kube-apiserver and etcd as `make cluster` built them; a clear error if they are not there."""
    pinned = versions()
    apiserver = CACHE / "out" / f"kubernetes-{pinned['KUBERNETES_VERSION']}" / "kube-apiserver"
    etcd = CACHE / "out" / f"etcd-{pinned['ETCD_VERSION']}" / "etcd"
    # Another build to try the tier against (another Kubernetes version), named by path.
    apiserver = Path(os.environ.get("SAFEAGENT_API_APISERVER", apiserver))
    missing = [str(path) for path in (apiserver, etcd) if not os.access(path, os.X_OK)]
    if missing:
        raise RuntimeError(
            f"API tier: {', '.join(missing)} not built; run `make api-test` (it builds them) or `make cluster`"
        )
    return apiserver, etcd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiServer:
    """A running control plane's data plane half: where it is and the admin's token."""

    url: str
    admin_token: str
    workdir: Path

    def client(self, token: str | None = None):  # -> kubernetes.client.ApiClient
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_file)  # the server's self-signed serving certificate
        configuration.api_key = {"authorization": token or self.admin_token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def kubeconfig(self, token: str, path: Path) -> Path:
        """A kubeconfig for `token` (Kopf's login reads one)."""
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: api\n"
            f"clusters:\n- name: api\n  cluster:\n    server: {self.url}\n    certificate-authority: {self.ca_file}\n"
            f"users:\n- name: user\n  user:\n    token: {token}\n"
            "contexts:\n- name: api\n  context:\n    cluster: api\n    user: user\n"
        )
        return path


class _StartFailed(RuntimeError):
    """etcd or kube-apiserver exited while starting (most often: a port taken in between)."""


def _wait_ready(url: str, token: str, processes: dict[str, subprocess.Popen], workdir: Path) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # its certificate is not written yet
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                log = (workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise _StartFailed(f"{name} exited ({process.returncode}) while starting; its log ends:\n{log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(request, context=context, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"kube-apiserver not ready in {START_TIMEOUT:.0f} s; its log: {workdir / 'kube-apiserver.log'}")


def _start(apiserver: Path, etcd: Path, workdir: Path, processes: dict[str, subprocess.Popen]) -> ApiServer:
    """etcd and kube-apiserver on loopback ports picked now; `processes` gets them as they start."""
    client_port, peer_port, secure_port = _free_port(), _free_port(), _free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    processes["etcd"] = subprocess.Popen(
        [str(etcd), "--data-dir", str(workdir / "etcd"), "--listen-client-urls", etcd_url,
         "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
         "--unsafe-no-fsync", "--log-level", "warn"],
        stdout=open(workdir / "etcd.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115 -- the child keeps it
    )
    admin_token = secrets.token_hex(24)
    (workdir / "tokens.csv").write_text(f'{admin_token},safeagent-api-admin,admin,"system:masters"\n')
    key = workdir / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    processes["kube-apiserver"] = subprocess.Popen(
        [str(apiserver), "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
         "--advertise-address", "127.0.0.1", "--secure-port", str(secure_port),
         "--cert-dir", str(workdir / "certs"), "--token-auth-file", str(workdir / "tokens.csv"),
         "--authorization-mode", "RBAC", "--service-cluster-ip-range", "10.96.0.0/16",
         "--service-account-issuer", "https://kubernetes.default.svc",
         "--service-account-key-file", str(key), "--service-account-signing-key-file", str(key),
         "--allow-privileged=false", "--v", "1"],
        stdout=open(workdir / "kube-apiserver.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )
    url = f"https://127.0.0.1:{secure_port}"
    _wait_ready(url, admin_token, processes, workdir)
    return ApiServer(url=url, admin_token=admin_token, workdir=workdir)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in reversed(list(processes.values())):
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    processes.clear()


START_ATTEMPTS = 3


@contextlib.contextmanager
def running() -> "contextlib.Generator[ApiServer, None, None]":
    """Start etcd and kube-apiserver, yield the server, stop both and remove their data.

    A port is picked free and then handed to the server, so another process (a second pytest
    worker starting its own server) can take it in between: a start that fails that way is tried
    again on new ports, up to START_ATTEMPTS times."""
    apiserver, etcd = binaries()
    top = Path(tempfile.mkdtemp(prefix="safeagent-api-"))
    processes: dict[str, subprocess.Popen] = {}
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            workdir = top / f"attempt-{attempt}"
            workdir.mkdir()
            try:
                server = _start(apiserver, etcd, workdir, processes)
                break
            except _StartFailed:
                _stop(processes)
                if attempt == START_ATTEMPTS:
                    raise
        yield server
    finally:
        _stop(processes)
        if os.environ.get("SAFEAGENT_API_KEEP"):
            print(f"API tier: logs and data kept in {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
