"""A warm sandbox Pod on the real cluster (docs/warm-pool.md), before any pool uses it: the Pod the
operator's builder makes (`builders.build_warm_pod`, the installed configuration, the real egress
proof against the chart's canary; its warm label swapped for the test's own, so that the installed
operator's pool leaves it alone), in the release's sandbox namespace beside the profile's
NetworkPolicy, reached over its channel from a client Pod the test's ingress policy admits (it
stands in for the operator, whose own policy comes with the pool).

What it shows: the Pod is admitted under Pod Security `restricted` and becomes Ready only once it
has proved its bounds and listens; the delivered job runs and its record is the runner's; the
command finds no token (environment, its own and the runner's, /proc/1/cmdline), no channel (its
own port refuses it), cannot reach another warm Pod's channel, and what it leaves running dies with
it; a stranger without the token, or from a Pod the policy does not admit, does not get in, and the
Pod still takes the right delivery afterwards.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
import uuid

import pytest

from clusterlib import apply, hardened_pod
from sandbox_pods import installed_config
from sbj_helpers import NS, require_operator

CLIENT_LABEL = "safeagent.ca/e2e-warm-client"
OWN_WARM_LABEL = "safeagent.ca/e2e-warm-pod"
RUN_LABEL = "safeagent.ca/e2e-warm"

# Run inside the client Pod (the sandbox image has safeagent.sandbox): deliver stdin's request.
DELIVER = textwrap.dedent("""
    import json, sys
    from safeagent.sandbox import channel
    ask = json.load(sys.stdin)
    try:
        channel.deliver(ask["host"], ask["port"], ask["token"], ask["request"], timeout=10)
        print("accepted")
    except channel.ChannelError as error:
        print("refused:", error)
""")

# Run as the delivered command in a warm Pod: everything it can find out about the way in.
SNOOP = textwrap.dedent("""
    import json, os, socket, subprocess, sys
    token, other = sys.argv[1], sys.argv[2]
    found = {}
    try:
        found["runner_environ"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
    except OSError as error:
        found["runner_environ"] = f"error: {error.strerror}"
    found["token_in_cmdline"] = token in open("/proc/1/cmdline", "rb").read().decode(errors="replace")
    found["token_in_env"] = any(token in value for value in os.environ.values())
    found["channel_variable"] = "SAFEAGENT_CHANNEL_TOKEN" in os.environ
    def reach(host):
        try:
            socket.create_connection((host, 8470), timeout=3).close()
            return "connected"
        except OSError as error:
            return type(error).__name__
    found["own_channel"] = reach("127.0.0.1")
    found["other_channel"] = reach(other)
    found["workspace"] = sorted(os.listdir("."))
    found["tmp"] = sorted(os.listdir("/tmp"))
    subprocess.Popen(["sleep", "3600"], start_new_session=True)  # left behind on purpose
    print(json.dumps(found))
""")


@pytest.fixture(scope="module")
def warm_bed(kubectl):
    """The profile's policy, an ingress policy admitting the client, the client Pod, and a maker of warm Pods."""
    from safeagent import builders
    from safeagent.models import NetworkProfile

    require_operator(kubectl)
    run = uuid.uuid4().hex[:6]
    config = installed_config(kubectl, egress_check=True)
    kubectl("apply", "-f", "-", input=json.dumps(builders.build_network_policy(NS, NetworkProfile.NONE, config)))
    ingress = builders.build_warm_ingress_policy(
        NS, f"e2e-warm-{run}", {"podSelector": {"matchLabels": {CLIENT_LABEL: run}}})
    ingress["spec"]["podSelector"]["matchLabels"] = {builders.LABEL_SANDBOX: "true", OWN_WARM_LABEL: run}
    apply(kubectl, NS, ingress)
    client, stranger = f"e2e-warm-client-{run}", f"e2e-warm-stranger-{run}"
    sleeper = ["python3", "-c", "import time; time.sleep(3600)"]
    apply(kubectl, NS, hardened_pod(client, sleeper, {CLIENT_LABEL: run, RUN_LABEL: run}))
    apply(kubectl, NS, hardened_pod(stranger, sleeper, {RUN_LABEL: run}))
    canary = config.egressCheck.canary
    slices = json.loads(kubectl("-n", canary.namespace, "get", "endpointslices", "-l",
                                f"kubernetes.io/service-name={canary.service}", "-o", "json").stdout)["items"]
    canary_ip = next(ep["addresses"][0] for s in slices for ep in s.get("endpoints") or []
                     if (ep.get("conditions") or {}).get("ready"))
    bed = WarmBed(kubectl, run, config, canary_ip, client, stranger)
    kubectl("-n", NS, "wait", "--for=condition=Ready", f"pod/{client}", f"pod/{stranger}", "--timeout=120s")
    try:
        yield bed
    finally:
        kubectl("-n", NS, "delete", "pods", "-l", f"{RUN_LABEL}={run}", "--wait=false", "--grace-period=0",
                check=False)
        kubectl("-n", NS, "delete", "networkpolicy", ingress["metadata"]["name"], "--wait=false", check=False)


class WarmBed:
    def __init__(self, kubectl, run: str, config, canary_ip: str, client: str, stranger: str) -> None:
        self.kubectl, self.run, self.config, self.canary_ip = kubectl, run, config, canary_ip
        self.client, self.stranger = client, stranger

    def warm_pod(self, suffix: str) -> tuple[str, str]:
        """A warm Pod of profile `none`, Ready (proved and listening): (name, token)."""
        from safeagent import builders
        from safeagent.models import NetworkProfile
        from safeagent.sandbox import channel

        name, token = f"e2e-warm-{self.run}-{suffix}", channel.new_token()
        pod = builders.build_warm_pod(NS, name, NetworkProfile.NONE, self.config, token, 300,
                                      canary_address=self.canary_ip)
        # Not the operator's to take or tidy away: its pool counts only Pods labelled warm, and with
        # no pool (the main release's default) it removes those. The test's own label instead.
        del pod["metadata"]["labels"][builders.LABEL_WARM]
        pod["metadata"]["labels"].update({RUN_LABEL: self.run, OWN_WARM_LABEL: self.run})
        apply(self.kubectl, NS, pod)
        return name, token

    def ready(self, *names: str) -> None:
        self.kubectl("-n", NS, "wait", "--for=condition=Ready", *(f"pod/{name}" for name in names), "--timeout=240s")

    def ip(self, name: str) -> str:
        return self.kubectl("-n", NS, "get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout.strip()

    def deliver(self, name: str, token: str, request: dict, sender: str | None = None) -> str:
        ask = {"host": self.ip(name), "port": 8470, "token": token, "request": request}
        proc = self.kubectl("-n", NS, "exec", "-i", sender or self.client, "--", "python3", "-I", "-c", DELIVER,
                            input=json.dumps(ask), check=False, timeout=60)
        return (proc.stdout + proc.stderr).strip()

    def finished(self, name: str, wait: float = 120) -> tuple[dict, list[dict]]:
        """The Pod once it has ended, and the records in its log (prepare's, then the runner's)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pod = json.loads(self.kubectl("-n", NS, "get", "pod", name, "-o", "json").stdout)
            if pod["status"].get("phase") in ("Succeeded", "Failed"):
                log = self.kubectl("-n", NS, "logs", name, "-c", "runner").stdout
                return pod, [json.loads(line) for line in log.splitlines() if line.startswith('{"kind":')]
            time.sleep(0.5)
        raise AssertionError(f"{name} did not end within {wait:.0f} s")


def _request(argv: list[str], data: dict[str, str]) -> dict:
    """A ConfigMap source's job as the operator sends it: the volume's files, each in base64."""
    return {"argv": argv, "timeoutSeconds": 30, "maxOutputBytes": 65536,
            "prepare": {"source": "configMap", "maxFiles": 100, "maxBytes": 1 << 20},
            "files": {key: base64.b64encode(text.encode()).decode() for key, text in data.items()}}


def test_a_warm_pod_runs_its_one_job_and_the_command_finds_no_way_in_or_out(warm_bed):
    first, token = warm_bed.warm_pod("a")
    other, _ = warm_bed.warm_pod("b")
    warm_bed.ready(first, other)
    job = _request(["python3", "-c", SNOOP, token, warm_bed.ip(other)], {"README.md": "hello\n", "src--app.py": "x\n"})
    assert warm_bed.deliver(first, token, job) == "accepted"
    pod, records = warm_bed.finished(first)
    assert pod["status"]["phase"] == "Succeeded"
    assert [record["kind"] for record in records][0] == "safeagent.ca/prepare-result" and records[0]["ok"] is True
    final = records[-1]
    assert final["kind"] == "safeagent.ca/runner-result" and final["exitCode"] == 0, final
    assert final["egress"]["enforced"] is True and final["pids"]["limited"] is True
    found = json.loads(final["stdout"])
    print("what the command found:", found)
    assert found["runner_environ"].startswith("error: "), found  # non-dumpable PID 1
    assert not found["token_in_cmdline"] and not found["token_in_env"] and not found["channel_variable"]
    assert found["own_channel"] == "ConnectionRefusedError"  # closed before the command started
    assert found["other_channel"] != "connected"  # profile none: no egress to another sandbox
    assert found["workspace"] == ["README.md", "src"]
    assert found["tmp"] == []  # no ready file, no staged source
    assert final["leftoverProcessesKilled"] >= 1  # the sleeper did not outlive the job


def test_strangers_do_not_get_in_and_the_operator_still_does(warm_bed):
    name, token = warm_bed.warm_pod("c")
    warm_bed.ready(name)
    wrong = warm_bed.deliver(name, "f" * 64, _request(["touch", "stranger-ran"], {"a": "b"}))
    assert wrong.startswith("refused:"), wrong  # turned away without an answer
    unadmitted = warm_bed.deliver(name, token, _request(["touch", "stranger-ran"], {"a": "b"}), sender=warm_bed.stranger)
    assert unadmitted.startswith("refused:"), unadmitted  # the ingress policy admits the client only
    assert warm_bed.deliver(name, token, _request(["ls"], {"README.md": "hello\n"})) == "accepted"
    _, records = warm_bed.finished(name)
    assert records[-1]["exitCode"] == 0 and records[-1]["stdout"] == "README.md\n"


def test_a_hostile_source_delivered_to_a_warm_pod_runs_nothing(warm_bed):
    name, token = warm_bed.warm_pod("d")
    warm_bed.ready(name)
    hostile = _request(["touch", "ran"], {"ok.txt": "x", "a--..--..--etc--x": "escape"})
    assert warm_bed.deliver(name, token, hostile) == "accepted"
    pod, records = warm_bed.finished(name)
    assert records[0]["kind"] == "safeagent.ca/prepare-result" and records[0]["ok"] is False
    assert records[-1]["exitCode"] is None and "not prepared" in records[-1]["error"]
