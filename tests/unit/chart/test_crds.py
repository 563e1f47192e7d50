"""crds/ is generated from the pydantic models and must stay current and structural."""

from __future__ import annotations

from pathlib import Path

import yaml

from safeagent import crdgen

CRDS = Path(__file__).resolve().parents[3] / "crds"


def test_crds_directory_equals_a_fresh_generation():
    generated = crdgen.generate()
    on_disk = sorted(p.name for p in CRDS.glob("*.yaml"))
    assert on_disk == sorted(generated), "run `make crds`"
    for filename, crd in generated.items():
        assert (CRDS / filename).read_text() == crdgen.render(crd), f"{filename} is stale: run `make crds`"


def _walk(node, path="root"):
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}.*")


def _schema(filename):
    crd = yaml.safe_load((CRDS / filename).read_text())
    return crd, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_node_is_typed_and_described():
    for filename in crdgen.generate():
        _, schema = _schema(filename)
        for path, node in _walk(schema):
            assert node.get("type"), f"{filename}: {path} has no type"
            if path == "root.metadata":
                continue  # the API server forbids describing metadata
            assert node.get("description"), f"{filename}: {path} has no description"
            assert not {"anyOf", "oneOf", "allOf", "$ref"} & set(node), f"{filename}: {path} not structural"


def test_sandboxjob_api_surface():
    crd, schema = _schema("safeagent.ca_sandboxjobs.yaml")
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["sbj"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Command", "Profile", "Age"]
    spec = schema["properties"]["spec"]
    rules = {r["rule"] for r in spec["x-kubernetes-validations"]}
    assert "self == oldSelf" in rules
    timeout = spec["properties"]["timeoutSeconds"]
    assert (timeout["minimum"], timeout["maximum"], timeout["default"]) == (1, 3600, 300)
    assert spec["properties"]["networkProfile"]["enum"] == ["none", "model-only", "git-read", "package-mirror"]
    assert "configMap" in spec["properties"]["source"]["x-kubernetes-validations"][0]["rule"]
    status = schema["properties"]["status"]["properties"]
    for field in ("phase", "decision", "reason", "message", "argv", "approvalName", "podName", "exitCode",
                  "stdout", "stderr", "stdoutTruncated", "stderrTruncated", "changedFiles", "startTime",
                  "completionTime", "conditions", "decidedAt", "approvedAt"):
        assert field in status, field


def test_approval_rules_make_the_decision_final_and_the_command_immutable():
    crd, schema = _schema("safeagent.ca_approvals.yaml")
    spec = schema["properties"]["spec"]
    rules = {r["rule"] for r in spec["x-kubernetes-validations"]}
    assert "self.command == oldSelf.command" in rules
    assert "oldSelf.decision == 'Pending' || self.decision == oldSelf.decision" in rules
    assert spec["properties"]["decision"]["enum"] == ["Pending", "Approved", "Denied"]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_a_field_without_description_is_refused():
    try:
        crdgen.structural({"type": "object", "properties": {"x": {"type": "string"}}}, {}, "spec")
    except crdgen.SchemaError as error:
        assert "spec.x" in str(error)
    else:
        raise AssertionError("no SchemaError")
