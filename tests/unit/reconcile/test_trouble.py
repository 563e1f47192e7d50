"""Pod trouble (issue 11, item 8): what a sandbox Pod is waiting for, as a table, and how the job
shows it: within one pass in status, and a missing source ends the job after a short grace.

The Pod statuses and Events below are shaped as the kubelet and scheduler write them.
"""

from __future__ import annotations

import pytest

from safeagent.reconcile.trouble import has_started, pod_trouble


def pod(phase="Pending", init=None, main=None, conditions=None):
    status = {"phase": phase}
    if init is not None:
        status["initContainerStatuses"] = [{"name": "prepare", "state": init}]
    if main is not None:
        status["containerStatuses"] = [{"name": "runner", "state": main}]
    if conditions is not None:
        status["conditions"] = conditions
    return {"metadata": {"name": "job-abc", "uid": "pod-uid"}, "status": status}


def waiting(reason, message=None):
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def event(reason, message, kind="Warning", last="2025-01-01T12:00:05Z"):
    return {"type": kind, "reason": reason, "message": message, "lastTimestamp": last}


UNSCHEDULABLE_PVC = {
    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
    "message": '0/1 nodes are available: persistentvolumeclaim "no-such-pvc" not found. preemption: '
               "0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
}
MOUNT_CM = event("FailedMount", 'MountVolume.SetUp failed for volume "source" : configmap "no-such-cm" not found')

ROWS = [
    # (id, pod, events, missing source, reason or None, text the message contains)
    ("creating", pod(init=waiting("PodInitializing"), main=waiting("PodInitializing")), [], None, None, None),
    ("plain pending", pod(), [], None, None, None),
    ("missing configmap, said by the API", pod(init=waiting("PodInitializing")), [MOUNT_CM],
     "ConfigMap no-such-cm", "SourceNotFound", "the source ConfigMap no-such-cm does not exist"),
    ("missing pvc, said by the API", pod(conditions=[UNSCHEDULABLE_PVC]), [],
     "PersistentVolumeClaim no-such-pvc", "SourceNotFound", "PersistentVolumeClaim no-such-pvc"),
    ("missing pvc, source not checked", pod(conditions=[UNSCHEDULABLE_PVC]), [], None,
     "Unschedulable", 'persistentvolumeclaim "no-such-pvc" not found'),
    ("mount failure, source there", pod(init=waiting("PodInitializing")), [MOUNT_CM], None,
     "VolumeMountFailed", 'configmap "no-such-cm" not found'),
    ("attach failure", pod(), [event("FailedAttachVolume", "AttachVolume.Attach failed for volume pv-1")],
     None, "VolumeMountFailed", "Attach failed"),
    ("network setup", pod(), [event("FailedCreatePodSandBox", "failed to setup network for sandbox")],
     None, "PodSandboxFailed", "setup network"),
    ("normal events only", pod(), [event("Scheduled", "Successfully assigned", kind="Normal"),
                                   event("Pulled", "image present", kind="Normal")], None, None, None),
    ("unknown warning", pod(), [event("SomethingElse", "hm")], None, None, None),
    ("image never pulled", pod(init=waiting("ErrImageNeverPull",
                                           'Container image "safeagent/sandbox:nope" is not present with pull policy of Never')),
     [], None, "ImageNotPresent", "safeagent/sandbox:nope"),
    ("image pull failed", pod(init=waiting("ErrImagePull", "rpc error: not found")), [], None, "ImagePullFailed", "rpc error"),
    ("image pull back-off", pod(init=waiting("ImagePullBackOff", 'Back-off pulling image "x"')), [], None,
     "ImagePullFailed", "Back-off"),
    ("invalid image name", pod(init=waiting("InvalidImageName")), [], None, "ImagePullFailed", "InvalidImageName"),
    ("runner image", pod(init={"terminated": {"exitCode": 0}}, main=waiting("ErrImageNeverPull", "not present")),
     [], None, "ImageNotPresent", "container runner"),
    ("container config", pod(init=waiting("CreateContainerConfigError", 'configmap "x" not found')), [], None,
     "ContainerConfigError", 'configmap "x" not found'),
    ("no node fits", pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                      "message": "0/1 nodes are available: 1 Insufficient memory."}]),
     [], None, "Unschedulable", "Insufficient memory"),
    ("scheduled", pod(conditions=[{"type": "PodScheduled", "status": "True"}]), [], None, None, None),
    # precedence: the missing source explains the rest; a container beats the scheduler and Events
    ("source before image", pod(init=waiting("ErrImageNeverPull", "not present")), [MOUNT_CM],
     "ConfigMap no-such-cm", "SourceNotFound", "no-such-cm"),
    ("image before events", pod(init=waiting("ErrImagePull", "pull")), [MOUNT_CM], None, "ImagePullFailed", "pull"),
]


@pytest.mark.parametrize(("pod_", "events", "missing", "reason", "text"), [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_pod_trouble_table(pod_, events, missing, reason, text):
    trouble = pod_trouble(pod_, events, missing)
    if reason is None:
        assert trouble is None
        return
    assert trouble is not None and trouble.reason == reason
    assert text in trouble.message and trouble.message.startswith("Pod job-abc is waiting: ")
    assert len(trouble.message) <= 1024


def test_the_latest_warning_event_wins():
    older = event("FailedMount", "old mount trouble", last="2025-01-01T12:00:01Z")
    newer = event("FailedCreatePodSandBox", "new sandbox trouble", last="2025-01-01T12:00:09Z")
    assert pod_trouble(pod(), [newer, older]).reason == "PodSandboxFailed"
    assert pod_trouble(pod(), [older, newer]).reason == "PodSandboxFailed"


def test_a_huge_message_is_cut():
    trouble = pod_trouble(pod(), [event("FailedMount", "x" * 10_000)])
    assert len(trouble.message) == 1024 and len(trouble.detail) == 1024


@pytest.mark.parametrize(
    ("pod_", "started"),
    [
        (pod(), False),
        (pod(init=waiting("PodInitializing")), False),
        (pod(init={"running": {"startedAt": "t"}}), True),
        (pod(init={"terminated": {"exitCode": 0}}, main=waiting("PodInitializing")), True),
        (pod(phase="Running"), True),
        (pod(phase="Failed"), True),
    ],
)
def test_has_started(pod_, started):
    assert has_started(pod_) is started
