"""reconcile/trouble.py on a real API server: why a sandbox Pod waits shows in the job at once,
read from the Pod's status and Events as the kubelet writes them."""

from __future__ import annotations

from safeagent.kube import Invalid

# A claim nobody made (a deleted one lingers: the server's storage-protection finalizer holds it
# until the controller manager, absent here, sees no Pod using it).
ABSENT_CLAIM = {"persistentVolumeClaim": {"claimName": "absent"}}


def _waiting(world):
    return [reason for reason in world.reasons() if reason == "SandboxPodWaiting"]


def test_a_missing_configmap_shows_at_once_and_ends_the_job_after_the_grace(world):
    world.delete_configmap()
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    st = world.status("list")
    assert st["reason"] == "SourceNotFound" and "the source ConfigMap repo does not exist" in st["message"]
    assert st["message"].startswith(f"Pod {st['podName']} is waiting")
    assert world.run("list") == "Running"
    assert len(_waiting(world)) == 1  # one record per change, not per pass
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert world.run("list") == "Failed"
    st = world.status("list")
    assert (st["reason"], st["message"]) == ("SourceNotFound", "the source ConfigMap repo does not exist")
    assert world.pods == {} and world.reasons()[-1] == "JobFailed"


def test_a_missing_volume_source_ends_the_job(world):
    world.add_job("list", "ls", source=ABSENT_CLAIM)
    world.run("list")
    st = world.status("list")
    assert (st["phase"], st["reason"]) == ("Running", "SourceNotFound")
    assert "PersistentVolumeClaim absent" in st["message"]
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert world.run("list") == "Failed"
    assert world.status("list")["reason"] == "SourceNotFound"


def test_a_missing_volume_source_ends_a_job_that_needs_an_approval(world):
    world.add_job("rm", "rm delete-me.txt", source=ABSENT_CLAIM)
    assert world.run("rm") == "Pending"
    assert world.status("rm")["reason"] == "reviewing_source"  # the review Pod was just created
    assert world.run("rm") == "Pending"
    assert world.status("rm")["reason"] == "SourceNotFound"
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert world.run("rm") == "Failed"
    assert world.status("rm")["reason"] == "SourceNotFound"
    assert world.pods == {} and world.approvals == {}


def test_an_image_that_is_not_present_shows_and_the_timeout_says_so(world):
    world.add_job("slow", "ls", timeoutSeconds=10)
    world.run("slow")
    world.set_pod_status(world.status("slow")["podName"], {
        "phase": "Pending",
        "initContainerStatuses": [{
            "name": "prepare", "image": "safeagent/sandbox:dev", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"waiting": {
                "reason": "ErrImageNeverPull",
                "message": 'Container image "safeagent/sandbox:dev" is not present with pull policy of Never'}},
        }],
    })
    assert world.run("slow") == "Running"
    st = world.status("slow")
    assert st["reason"] == "ImageNotPresent" and "is not present" in st["message"]
    world.clock.advance(10 + world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert world.run("slow") == "Failed"
    st = world.status("slow")
    assert st["reason"] == "Timeout" and "is not present" in st["message"]  # the image is not the source: no early end


def test_volume_trouble_is_read_from_the_pods_events(world):
    world.add_job("list", "ls")
    world.run("list")
    pod = world.pods[world.status("list")["podName"]]
    world.post_pod_event(pod, "FailedMount",
                         'MountVolume.SetUp failed for volume "source" : rpc error: code = DeadlineExceeded')
    assert world.run("list") == "Running"
    # The kubelet's Events are read once the Pod has a node (a Pod queued for one has none).
    assert world.status("list")["reason"] == "launched"
    world.bind_pod(pod["metadata"]["name"])
    assert world.run("list") == "Running"
    assert world.status("list")["reason"] == "VolumeMountFailed"


def test_unreadable_events_or_source_never_fail_the_job(world):
    world.add_job("list", "ls")
    world.run("list")
    world.bind_pod(world.status("list")["podName"])
    world.kube.fail("list_pod_events", Invalid("events is forbidden"), times=5)
    world.kube.fail("get_configmap", Invalid("configmaps is forbidden"), times=5)
    assert world.run("list") == "Running"
    assert world.run("list") == "Running"
    assert world.status("list")["reason"] == "launched"


def test_a_started_pod_is_not_asked_about_its_source(world):
    world.add_job("list", "ls")
    world.run("list")
    world.set_pod_status(world.status("list")["podName"], {"phase": "Running"})
    world.delete_configmap()  # deleted after the copy: it no longer matters
    world.kube.fail("list_pod_events", AssertionError("not asked"))
    assert world.run("list") == "Running"
    assert world.status("list")["reason"] == "launched"
