"""reconcile/warm.py on a real API server: the pool filled as the chart's operator may, a ready warm
Pod claimed by exactly one job and handed the job over its channel (a real channel on a loopback
address stands in for the Pod's, which the test plays, as it plays every Pod's node), the job
ending from the Pod's record, and each way a job goes cold instead."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from safeagent import builders, reconcile
from safeagent.reconcile import warm as warm_reconcile
from safeagent.client import Client, VerifiedCache
from safeagent.sandbox import bundle, channel, contract, prepare, runner, warm
from tests.api.stage import SOURCE_CONFIGMAP
from tests.api.world import compact, prepare_record, runner_record

# startingMax as large as any pool here: the tests of the pacing set their own.
POOL = {"size": {"none": 1}, "startingMax": 50, "operatorNamespace": "safeagent-system",
        "operatorPodLabels": {"app": "op"}}


class FakeWarmPod:
    """The node's part of one warm Pod: ready at a loopback address, its channel served for real."""

    def __init__(self, world, name: str, listen: bool = True) -> None:
        self.world, self.name = world, name
        self.address = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
        pod = world.pod(name)
        self.token = pod["spec"]["containers"][0]["env"][0]["value"]
        self.request: dict[str, Any] | None = None
        self.thread: threading.Thread | None = None
        if listen:
            server = channel.listen(builders.WARM_CHANNEL_PORT, self.address)
            self.thread = threading.Thread(target=self._serve, args=(server,), daemon=True)
            self.thread.start()
        world.set_pod_status(name, {"phase": "Running", "podIP": self.address,
                                    "conditions": [{"type": "Ready", "status": "True"}]})
        world.ctx.warm.seen(world.pod(name))  # as the operator's Pod watch would

    def _serve(self, server) -> None:
        try:
            self.request = channel.serve_once(server, self.token.encode(), 1 << 20, idle_seconds=20)
        except channel.ChannelError:
            pass


def _pool(world, size: int = 1, **settings: Any) -> list[str]:
    world.ctx.config = world.config(warmPool={**POOL, "size": {"none": size}, **settings})
    reconcile.fill_warm_pools(world.ctx)
    return _warm_pods(world)


def _warm_pods(world) -> list[str]:
    return sorted(name for name, pod in world.pods.items() if pod["metadata"]["labels"].get(builders.LABEL_WARM))


def test_the_pool_is_filled_to_its_size_with_warm_pods_the_server_admits(world):
    warm = _pool(world, size=2)
    assert len(warm) == 2
    for name in warm:
        pod = world.pod(name)
        assert builders.LABEL_JOB_UID not in pod["metadata"]["labels"]
        assert pod["spec"]["containers"][0]["command"][-1] == "safeagent.sandbox.warm"
    assert reconcile.fill_warm_pools(world.ctx) == 0  # counted: nothing more
    assert {"safeagent-warm-channel", "safeagent-profile-none"} <= set(world.network_policies)


def test_a_job_takes_the_ready_warm_pod_and_its_record_ends_it(world):
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    world.add_job("list", "ls -la")
    assert world.run("list") == "Running"
    status = world.status("list")
    assert status["podName"] == name and world.kube.pods_created == 1  # the pool's Pod, none of its own
    claimed = world.pod(name)
    job = world.job("list")
    assert claimed["metadata"]["labels"][builders.LABEL_JOB_UID] == job["metadata"]["uid"]
    assert claimed["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    pod.thread.join(10)
    assert pod.request is not None and pod.request["argv"] == ["ls", "-la"]
    source = world.core.read_namespaced_config_map(SOURCE_CONFIGMAP, world.ns)
    assert {key: base64.b64decode(value).decode() for key, value in pod.request["files"].items()} == source.data
    assert pod.request["prepare"]["source"] == "configMap" and "bundle" not in pod.request["prepare"]
    world.finish_pod(name, runner_record(stdout="a.txt\n"))
    assert world.run("list") == "Succeeded" and world.status("list")["stdout"] == "a.txt\n"


def test_a_source_the_warm_pods_preparation_refused_ends_the_job_rejected(world):
    (name,) = _pool(world)
    FakeWarmPod(world, name)
    world.add_job("list", "ls")
    world.run("list")
    refused = compact(prepare_record(False, "bad_key", "a key that leaves the tree"))
    nothing = compact(runner.no_result(contract.WARM_PREPARE_FAILED))
    world.set_log(name, "runner", refused + "\n" + nothing + "\n")
    world.set_pod_status(name, {"phase": "Succeeded"})
    assert world.run("list") == "Rejected"
    assert world.status("list")["reason"] == "bad_key"


def test_a_warm_pod_nobody_can_reach_is_dropped_and_the_job_goes_cold(world):
    (name,) = _pool(world)
    FakeWarmPod(world, name, listen=False)
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    assert world.status("list")["podName"] == builders.child_name("list", world.job("list")["metadata"]["uid"])
    assert name not in world.pods  # never trusted with anything again


def test_two_jobs_at_once_never_share_a_warm_pod(world):
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    for job in ("one", "two"):
        world.add_job(job, "ls")
    start = threading.Barrier(2)

    def launch(job: str) -> str | None:
        start.wait()
        return world.run(job)

    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        assert list(threads.map(launch, ("one", "two"))) == ["Running", "Running"]
    pods = {world.status(job)["podName"] for job in ("one", "two")}
    assert len(pods) == 2 and name in pods  # one warm, one cold
    pod.thread.join(10)
    assert pod.request is not None


def test_a_job_that_claimed_a_warm_pod_before_a_restart_keeps_it_and_nothing_is_delivered_twice(world):
    """The claim landed, the operator stopped before the job's status said so: the job's next pass
    finds its Pod by the claim and takes it as it is, without a second delivery or a second Pod."""
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    world.add_job("list", "ls")
    job = world.job("list")
    world.kube.claim_pod(world.ns, name, world.pod(name)["metadata"]["resourceVersion"],
                         {"labels": {builders.LABEL_JOB_UID: job["metadata"]["uid"]}})
    world.ctx.warm.seen(world.pod(name))
    assert world.run("list") == "Running"
    assert world.status("list")["podName"] == name and world.kube.pods_created == 1
    assert pod.request is None  # the channel was not used again


def test_a_volume_source_never_goes_warm(world):
    (name,) = _pool(world)
    FakeWarmPod(world, name)
    world.add_job("list", "ls", source={"persistentVolumeClaim": {"claimName": "repos"}})
    world.run("list")
    assert world.status("list").get("podName") != name
    assert builders.LABEL_JOB_UID not in world.pod(name)["metadata"]["labels"]


@pytest.mark.parametrize("profile", ["git-read"])
def test_a_profile_without_a_pool_never_goes_warm(world, profile):
    (name,) = _pool(world)
    FakeWarmPod(world, name)
    world.add_job("list", "ls", networkProfile=profile)
    assert world.run("list") == "Running"
    assert world.status("list")["podName"] != name


def test_a_running_warm_pod_is_read_as_soon_as_its_final_record_is_written(world):
    """The kubelet reports a container's end a second or more after it; a warm Pod's job ends from the
    runner's final record, in the log at once. The command's part alone (the listing unfinished) is
    not the end: the job still runs."""
    (name,) = _pool(world)
    FakeWarmPod(world, name)
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    early = {**runner_record(stdout="a.txt\n"), "error": contract.LISTING_UNFINISHED}
    world.set_log(name, "runner", compact(early) + "\n")
    assert world.run("list") == "Running"
    world.set_log(name, "runner", compact(early) + "\n" + compact(runner_record(stdout="a.txt\n")) + "\n")
    assert world.pod(name)["status"]["phase"] == "Running"
    assert world.run("list") == "Succeeded" and world.status("list")["stdout"] == "a.txt\n"


def test_a_cold_pods_runner_is_read_as_soon_as_its_final_record_goes_by_and_not_before(world):
    """A cold Pod too ends its job from the runner's final record, before the kubelet reports the
    end: once the runner's container runs, its log is followed (once), and the job is nudged when
    the final record goes by; not from the command's part alone, and no pass reads the log before.
    The API tier has no kubelet to stream a log: the stream here is the log as the test set it."""
    nudged = threading.Event()
    world.ctx.nudge = lambda *_: nudged.set()
    streams: list[str] = []

    def stream(namespace: str, name: str, container: str, seconds: float):
        streams.append(name)
        yield from world.kube.logs.get((namespace, name, container), "").encode().splitlines()

    world.kube.follow_pod_log = stream
    world.add_job("list", "ls")
    world.run("list")
    pod = world.status("list")["podName"]
    early = {**runner_record(stdout="a.txt\n"), "error": contract.LISTING_UNFINISHED}
    final = compact(early) + "\n" + compact(runner_record(stdout="a.txt\n")) + "\n"
    world.set_log(pod, "runner", final)
    world.set_pod_status(pod, {"phase": "Pending", "initContainerStatuses": [
        {"name": builders.PREPARE_CONTAINER, "state": {"running": {}}}]})
    reads = world.kube.requests["get pods/log"]
    assert world.run("list") == "Running" and streams == []
    runner_running = {"phase": "Running", "containerStatuses": [{"name": builders.RUNNER_CONTAINER, "state": {"running": {}}}]}
    world.set_log(pod, "runner", compact(early) + "\n")
    world.set_pod_status(pod, runner_running)
    assert world.run("list") == "Running"
    deadline = time.monotonic() + 10
    while (pod_key := (world.ns, pod)) in warm_reconcile._following or streams != [pod]:  # the thread at its end
        assert time.monotonic() < deadline, f"{pod_key} still followed"
        time.sleep(0.05)
    assert not nudged.is_set(), "a log that ended without the final record nudged the job"
    world.set_log(pod, "runner", final)
    assert world.run("list") == "Running", "read from a log not followed to its final record"
    assert streams == [pod] and world.kube.requests["get pods/log"] == reads
    world.add_job("later", "ls")
    world.run("later")
    later = world.status("later")["podName"]
    world.set_log(later, "runner", final)
    world.set_pod_status(later, runner_running)
    if world.run("later") == "Running":  # else the thread saw the record before the pass looked
        assert nudged.wait(10)
        assert world.run("later") == "Succeeded"
    assert streams == [pod, later] and world.status("later")["stdout"] == "a.txt\n"


def test_a_smaller_pool_or_none_leaves_no_unused_warm_pod_behind(world):
    """Turned down, the pool removes the unused Pods beyond its size (the ones not ready first);
    turned off, all unused ones. A claimed Pod is its job's and stays."""
    warm = _pool(world, size=3)
    FakeWarmPod(world, warm[0])
    FakeWarmPod(world, warm[1])
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    claimed = world.status("list")["podName"]
    world.ctx.config = world.config(warmPool={**POOL, "size": {"none": 1}})
    reconcile.fill_warm_pools(world.ctx)
    left = {name for name, pod in world.pods.items() if pod["metadata"]["labels"].get(builders.LABEL_WARM)}
    ready_unclaimed = ({warm[0], warm[1]} - {claimed})
    assert left == {claimed} | ready_unclaimed  # the one not ready went; one ready stays
    for name in ready_unclaimed:
        world.ctx.warm.seen(world.pod(name))
    world.ctx.config = world.config()  # the chart's default: no pool
    assert reconcile.fill_warm_pools(world.ctx) == 0
    left = {name for name, pod in world.pods.items() if pod["metadata"]["labels"].get(builders.LABEL_WARM)}
    assert left == {claimed}


def test_a_warm_pod_whose_status_moved_on_since_the_watch_saw_it_is_still_taken(world):
    """The watch lags the kubelet: the claim at the version it saw is refused (409), and made again
    at the Pod's current one, since the Pod is still ready and nobody's."""
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    world.set_pod_status(name, {"phase": "Running", "podIP": pod.address, "conditions": [
        {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]})
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    assert world.status("list")["podName"] == name and world.kube.pods_created == 1


def test_a_warm_pod_another_claimed_since_the_watch_saw_it_is_left_to_it(world):
    (name,) = _pool(world)
    FakeWarmPod(world, name)
    world.kube.claim_pod(world.ns, name, world.pod(name)["metadata"]["resourceVersion"],
                         {"labels": {builders.LABEL_JOB_UID: "someone-else"}})
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    assert world.status("list")["podName"] != name  # cold
    assert world.pod(name)["metadata"]["labels"][builders.LABEL_JOB_UID] == "someone-else"


def test_the_pool_starts_at_most_starting_max_pods_at_once(world):
    """A Pod's start costs its node about a CPU-second: the pool starts a few at a time, and more as
    those become ready."""
    first = _pool(world, size=5, startingMax=2)
    assert len(first) == 2
    assert reconcile.fill_warm_pools(world.ctx) == 0  # both still starting
    FakeWarmPod(world, first[0], listen=False)  # ready: one more may start
    assert reconcile.fill_warm_pools(world.ctx) == 1
    assert len(_warm_pods(world)) == 3


def test_while_jobs_take_warm_pods_the_pool_refills_only_when_nearly_empty_or_in_the_pause_after(world, monkeypatch):
    """Commands one after another run on the ready Pods without refills competing for the node; the
    pool refills at once when a profile is down to startingMax unused Pods, else after the pause."""
    world.ctx.config = world.config(warmPool={**POOL, "size": {"none": 4}, "startingMax": 1})
    for _ in range(4):  # one at a time, each made ready before the next starts
        assert reconcile.fill_warm_pools(world.ctx) == 1
        FakeWarmPod(world, next(name for name in _warm_pods(world) if not world.pod(name).get("status", {}).get("podIP")))
    for index, refilled in enumerate((0, 0, 1)):
        job = f"ls-{index}"
        world.add_job(job, "ls")
        assert world.run(job) == "Running" and world.status(job)["podName"].startswith(reconcile.warm.WARM_NAME_PREFIX)
        assert reconcile.fill_warm_pools(world.ctx) == refilled  # 3 and 2 unused: held back; 1: refilled
    assert reconcile.warm_refill_wait(world.ctx) > 0
    monkeypatch.setattr(reconcile.warm, "REFILL_QUIET_SECONDS", 0.0)  # the pause after the last take
    assert reconcile.warm_refill_wait(world.ctx) == 0
    assert reconcile.fill_warm_pools(world.ctx) == 0  # startingMax 1: the refill still starting


# ------------------------------------------------------------------------------ a bundle source


def _upload(world, root: Path, files: dict[str, bytes]) -> tuple[str, list[str]]:
    """`files` uploaded as `safeagent run --source DIR` does; (the manifest's name, its chunks' names)."""
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    upload = Client(namespace=world.ns, api_client=world.stage.admin).upload(str(root), cache=VerifiedCache(None))
    manifest = upload.source.name
    data = world.core.read_namespaced_config_map(manifest, world.ns).data[bundle.MANIFEST_KEY]
    return manifest, [bundle.chunk_name(digest) for digest in bundle.chunk_digests(bundle.read_manifest(manifest, data.encode()))]


TREE = {"delete-me.txt": b"bye\n", "src/app.py": b"print(1)\n", "big.bin": bytes(range(256)) * 4096}


def _prepared_in_the_pod(request: dict[str, Any], root: Path) -> contract.PrepareRecord:
    """What the warm Pod's runner makes of the delivered request: its files laid out, the preparation step run."""
    workspace = root / "workspace"
    workspace.mkdir(parents=True)
    spec = warm.prepare_spec(request, warm.stage_files(request, str(root / "staging")), str(workspace))
    record, _ = prepare.run(json.dumps(spec))
    return record


@pytest.mark.parametrize("approved", [False, True], ids=["allowed", "approved"])
def test_a_bundle_job_takes_a_warm_pod_and_is_delivered_its_manifest_and_chunks(world, tmp_path, approved):
    manifest, chunks = _upload(world, tmp_path / "tree", TREE)
    assert len(chunks) >= 2
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    command = "rm delete-me.txt" if approved else "ls -la"
    world.add_job("job", command, source={"bundle": {"name": manifest}})
    if approved:
        assert world.run("job") == "AwaitingApproval"
        approval = world.status("job")["approvalName"]
        world.decide(approval, "Approved")
        world.run_approval(approval)
    assert world.run("job") == "Running"
    assert world.status("job")["podName"] == name and world.kube.pods_created == 1
    pod.thread.join(10)
    assert pod.request is not None
    # The files are the manifest's and the chunks' objects, under the names the cold Pod mounts them.
    assert sorted(pod.request["files"]) == sorted([bundle.MANIFEST_KEY, *chunks])
    stored = world.core.read_namespaced_config_map(manifest, world.ns).data[bundle.MANIFEST_KEY]
    assert base64.b64decode(pod.request["files"][bundle.MANIFEST_KEY]).decode() == stored
    for chunk in chunks:
        stored = world.core.read_namespaced_config_map(chunk, world.ns).binary_data[bundle.CHUNK_KEY]
        assert pod.request["files"][chunk] == stored
    wanted = pod.request["prepare"]
    assert (wanted["source"], wanted["bundle"]) == ("bundle", manifest)
    assert wanted.get("expectedDigest") == world.status("job").get("sourceDigest")
    assert ("expectedDigest" in wanted) is approved  # pinned exactly when the cold Pod would be
    # ...and the Pod's own preparation step rebuilds the tree from them, to the approved digest.
    record = _prepared_in_the_pod(pod.request, tmp_path / "pod")
    assert record["ok"] is True and record["files"] == len(TREE)
    if approved:
        assert record["digest"] == wanted["expectedDigest"]  # the approved tree, proved in the Pod
    assert (tmp_path / "pod" / "workspace" / "big.bin").read_bytes() == TREE["big.bin"]
    world.finish_pod(name, runner_record(stdout="ok\n"))
    assert world.run("job") == "Succeeded"


def test_a_bundle_with_a_chunk_missing_goes_cold(world, tmp_path):
    manifest, chunks = _upload(world, tmp_path / "tree", TREE)
    world.delete_configmap(chunks[-1])
    (name,) = _pool(world)
    pod = FakeWarmPod(world, name)
    world.add_job("job", "ls", source={"bundle": {"name": manifest}})
    assert world.run("job") == "Running"
    cold = world.status("job")["podName"]
    assert cold == builders.child_name("job", world.job("job")["metadata"]["uid"])
    assert builders.LABEL_JOB_UID not in world.pod(name)["metadata"]["labels"]  # nobody's: still the pool's
    assert pod.request is None  # nothing was sent
    # The cold Pod mounts every chunk, the missing one too: the kubelet reports it as without a pool.
    volume = next(v for v in world.pod(cold)["spec"]["volumes"] if v["name"] == "source")
    assert chunks[-1] in [source["configMap"]["name"] for source in volume["projected"]["sources"]]
