"""Generate the CRDs (charts/safeagent/crds/*.yaml; `crds` at the top is a link) from the pydantic
models in safeagent.models.

    python -m safeagent.crdgen charts/safeagent/crds          # write <group>_<plural>.yaml
    python -m safeagent.crdgen --check charts/safeagent/crds  # exit 1 if a file differs

Pydantic emits JSON Schema ($defs, $ref, anyOf-with-null, titles); the API server wants a
*structural* OpenAPI v3 schema: every node typed, no references, no anyOf on types. `structural()`
does that translation and refuses a field without a description, so `kubectl explain` always helps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from safeagent import models

# JSON Schema keywords carried over unchanged; everything else (title, additionalProperties: false,
# default null ...) is dropped or translated.
_KEPT = (
    "type",
    "description",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "x-kubernetes-validations",
)


class SchemaError(ValueError):
    pass


def structural(
    schema: dict[str, Any], defs: dict[str, Any], where: str = "", field: bool = True
) -> dict[str, Any]:
    """Translate one pydantic JSON Schema node into a structural OpenAPI v3 node.

    `field` is False for the target of a reference or union, whose description may come from the
    referring field instead.
    """
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        node = structural(target, defs, where, field=False)
        merged = {**node, **{k: v for k, v in schema.items() if k in _KEPT}}
        return _require_description(merged, where) if field else merged
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{where}: only Optional[X] unions are supported")
        node = structural(options[0], defs, where, field=False)
        extra = {k: v for k, v in schema.items() if k in _KEPT and k != "default"}
        if schema.get("default") is not None:
            extra["default"] = schema["default"]
        merged = {**node, **extra}
        return _require_description(merged, where) if field else merged

    node = {k: v for k, v in schema.items() if k in _KEPT}
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties")
        if properties:
            node["properties"] = {
                name: structural(sub, defs, f"{where}.{name}") for name, sub in properties.items()
            }
            required = [name for name in schema.get("required", []) if name in properties]
            if required:
                node["required"] = required
        elif isinstance(schema.get("additionalProperties"), dict):
            node["additionalProperties"] = structural(
                schema["additionalProperties"], defs, f"{where}.*"
            )
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        item = dict(schema.get("items", {}))
        item.setdefault("description", f"One entry of {where.rsplit('.', 1)[-1]}.")
        node["items"] = structural(item, defs, f"{where}[]")
    elif kind is None:
        raise SchemaError(f"{where}: no type")
    if "default" in node and node["default"] is None:
        del node["default"]
    return _require_description(node, where) if field else node


def _require_description(node: dict[str, Any], where: str) -> dict[str, Any]:
    if not node.get("description"):
        raise SchemaError(f"{where or 'root'}: every field needs a description")
    return node


def _object_schema(model: type[BaseModel], where: str) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    return structural(raw, raw.get("$defs", {}), where)


def _resource_schema(
    spec: type[BaseModel], status: type[BaseModel], description: str
) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            # The API server owns metadata's schema and refuses anything but `type` here.
            "metadata": {"type": "object"},
            "spec": _object_schema(spec, "spec"),
            "status": _object_schema(status, "status"),
        },
    }


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    names = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "categories": ["safeagent"],
    }
    if short_names:
        names["shortNames"] = short_names
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{models.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "safeagent"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _column(name: str, path: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "jsonPath": path, **extra}


def generate() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, for every custom resource."""
    age = _column("Age", ".metadata.creationTimestamp", "date")
    sandbox_job = _crd(
        "SandboxJob",
        "sandboxjobs",
        ["sbj"],
        _resource_schema(
            models.SandboxJobSpec,
            models.SandboxJobStatus,
            models.SandboxJob.__doc__ or "",
        ),
        [
            _column("Phase", ".status.phase"),
            _column("Command", ".spec.command"),
            _column("Profile", ".spec.networkProfile"),
            age,
            _column("Reason", ".status.reason", priority=1),
            _column("Exit", ".status.exitCode", "integer", priority=1),
            _column("Requester", ".spec.requester.username", priority=1),
        ],
    )
    approval = _crd(
        "Approval",
        "approvals",
        [],
        _resource_schema(models.ApprovalSpec, models.ApprovalStatus, models.Approval.__doc__ or ""),
        [
            _column("Job", ".spec.jobName"),
            _column("Command", ".spec.command"),
            _column("Requester", ".spec.requester.username"),
            _column("Decision", ".spec.decision"),
            _column("Decider", ".spec.decider.username"),
            _column("Phase", ".status.phase"),
            age,
        ],
    )
    return {
        f"{models.GROUP}_sandboxjobs.yaml": sandbox_job,
        f"{models.GROUP}_approvals.yaml": approval,
    }


HEADER = "# Generated by `python -m safeagent.crdgen` from operator/safeagent/models.py; do not edit.\n"


def render(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where the CRD files live (crds/)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for filename, crd in generate().items():
        path = args.directory / filename
        text = render(crd)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run `make crds`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
