"""A bundle source (`safeagent run --source DIR`) on the operator's side and in the preparation step:
the model takes exactly one source kind and only a manifest's name, a spec without a bundle hashes as
before, the Pod mounts the manifest and its chunks as one read-only projected volume and is as
hardened as any, and the preparation step rebuilds the tree from a volume laid out as the kubelet
does, or refuses it with a stable reason and exit status 1."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from safeagent import builders
from safeagent.models import SandboxJobSpec, spec_hash
from safeagent.sandbox import bundle, prepare
from safeagent.sandbox.digest import digest_tree
from tests.support.jobs import CONFIG, job

MANIFEST = "sa-bundle-" + "a" * 64


@pytest.mark.parametrize("source", [
    {"bundle": {"name": "sa-bundle-xyz"}},
    {"bundle": {"name": "other"}},
    {"bundle": {"name": MANIFEST}, "configMap": {"name": "repo"}},
    {},
])
def test_the_model_takes_one_source_and_only_a_manifests_name(source):
    with pytest.raises(ValidationError):
        SandboxJobSpec.model_validate({"command": "ls", "source": source})


def test_a_spec_without_a_bundle_hashes_as_before():
    spec = SandboxJobSpec.model_validate({"command": "ls", "source": {"configMap": {"name": "repo"}}})
    before = {"command": "ls", "source": {"configMap": {"name": "repo"}, "persistentVolumeClaim": None},
              "networkProfile": "none", "timeoutSeconds": 300}
    import hashlib

    assert spec_hash(spec) == hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    with_bundle = SandboxJobSpec.model_validate({"command": "ls", "source": {"bundle": {"name": MANIFEST}}})
    assert spec_hash(with_bundle) != spec_hash(spec)


def test_the_pod_mounts_the_manifest_and_its_chunks_read_only():
    chunks = ["1" * 64, "2" * 64]
    pod = builders.build_sandbox_pod(job({"bundle": {"name": MANIFEST}}), ["ls"], 64, CONFIG, bundle_chunks=chunks)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "source")
    assert volume["projected"]["defaultMode"] == 0o444
    assert [(s["configMap"]["name"], s["configMap"]["items"]) for s in volume["projected"]["sources"]] == [
        (MANIFEST, [{"key": "manifest.json", "path": "manifest.json"}]),
        (f"sa-chunk-{chunks[0]}", [{"key": "chunk.z", "path": f"sa-chunk-{chunks[0]}"}]),
        (f"sa-chunk-{chunks[1]}", [{"key": "chunk.z", "path": f"sa-chunk-{chunks[1]}"}]),
    ]
    init = pod["spec"]["initContainers"][0]
    assert {"name": "source", "mountPath": "/source", "readOnly": True} in init["volumeMounts"]
    spec = json.loads(init["args"][0])
    assert (spec["source"], spec["bundle"]) == ("bundle", MANIFEST)
    plain = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG)
    assert pod["spec"]["securityContext"] == plain["spec"]["securityContext"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert [c["securityContext"] for c in pod["spec"]["containers"]] == [
        c["securityContext"] for c in plain["spec"]["containers"]]


def kubelet_layout(root, packed, chunk=None):
    """A projected volume as the kubelet writes it: a hidden directory, `..data` and a link per file."""
    hidden = root / "..2026_01_01_00_00_00.1"
    hidden.mkdir(parents=True)
    (hidden / "manifest.json").write_bytes(packed.manifest)
    for digest in packed.chunks:
        (hidden / bundle.chunk_name(digest)).write_bytes(chunk or packed.compressed(digest))
    os.symlink(hidden.name, root / "..data")
    for entry in hidden.iterdir():
        os.symlink(f"..data/{entry.name}", root / entry.name)
    return root


def spec_for(tmp_path, name):
    (tmp_path / "ws").mkdir()
    return json.dumps({"source": "bundle", "sourceDir": str(tmp_path / "source"), "workspace": str(tmp_path / "ws"),
                       "maxFiles": 100, "maxBytes": 1 << 20, "bundle": name})


def test_prepare_rebuilds_a_bundle(tmp_path, capsys):
    (tmp_path / "tree" / "src").mkdir(parents=True)
    (tmp_path / "tree" / "src" / "app.py").write_text("print('hi')\n")
    packed = bundle.pack(str(tmp_path / "tree"))
    kubelet_layout(tmp_path / "source", packed)
    assert prepare.main([spec_for(tmp_path, packed.name)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["ok"] and record["digest"] == digest_tree(str(tmp_path / "tree"))
    assert (tmp_path / "ws" / "src" / "app.py").read_text() == "print('hi')\n"


@pytest.mark.parametrize(("poison", "reason"), [("chunk", "chunk_digest_mismatch"), ("name", "bundle_digest_mismatch"),
                                                 ("caps", "too_many_files")])
def test_prepare_refuses_a_poisoned_bundle(tmp_path, capsys, poison, reason):
    import zlib

    (tmp_path / "tree").mkdir()
    for index in range(3 if poison != "caps" else 150):
        (tmp_path / "tree" / f"f{index}").write_text(f"{index}\n")
    packed = bundle.pack(str(tmp_path / "tree"))
    kubelet_layout(tmp_path / "source", packed, zlib.compress(b"evil") if poison == "chunk" else None)
    name = "sa-bundle-" + "b" * 64 if poison == "name" else packed.name
    assert prepare.main([spec_for(tmp_path, name)]) == 1
    record = json.loads(capsys.readouterr().out)
    assert (record["ok"], record["reason"]) == (False, reason)
    assert not os.listdir(tmp_path / "ws") or poison == "chunk"
