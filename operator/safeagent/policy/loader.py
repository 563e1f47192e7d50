"""Read a policy file: YAML (no aliases, no duplicate keys) parsed into a `Policy`; a file may
extend another (extends.py)."""

from __future__ import annotations

import os
from collections.abc import Hashable

import yaml
from pydantic import ValidationError

from . import extends
from .compiled import compiled_for
from .errors import PolicyError
from .model import Policy

MAX_POLICY_BYTES = 1024 * 1024


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no alias bombs; an anchor alone is harmless) and duplicate mapping keys."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            # types-PyYAML leaves peek_event unannotated (it returns the alias event checked for above)
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "aliases are not allowed in a policy file", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, object]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                # a list or mapping as a key (`? [a, b]`): SafeLoader would refuse it too, but only after
                # the look-up below had failed with a TypeError that no caller expects from a bad file
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def format_validation_error(source: str, error: ValidationError, limit: int = 8) -> str:
    lines = []
    for item in error.errors()[:limit]:
        # pydantic adds the union member or validator name to some locations; keep the field path only
        location = tuple(part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        message = item["msg"].removeprefix("Value error, ")
        where = _field_path(location)
        lines.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
    if error.error_count() > limit:
        lines.append(f"{source}: ... and {error.error_count() - limit} more errors")
    return "\n".join(lines)


def parse_policy(document: object, source: str = "<policy>") -> Policy:
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of keys, not {type(document).__name__}")
    if extends.EXTENDS in document:
        raise PolicyError(f"{source}: extends: only a policy file can extend another (load_policy reads both)")
    try:
        policy = Policy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(format_validation_error(source, error)) from None
    try:
        compiled_for(policy)  # option sets, invocations and option names: refused at load time
    except ValueError as error:
        raise PolicyError(f"{source}: {error}") from None
    return policy


def _read_document(source: str) -> object:
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        raise PolicyError(f"{source}: cannot read the policy file: {error.strerror or error}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: the policy file is larger than {MAX_POLICY_BYTES} bytes")
    try:
        return yaml.load(data.decode("utf-8"), Loader=_StrictLoader)  # noqa: S506 - strict SafeLoader
    except UnicodeDecodeError:
        raise PolicyError(f"{source}: the policy file is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: not valid YAML: {error}") from None


def load_policy_files(path: str | os.PathLike[str]) -> tuple[Policy, tuple[str, ...]]:
    """A policy file (and the base it extends, if any), validated, with the paths it was read from."""
    source = os.fspath(path)
    document = _read_document(source)
    sources = [source]
    if isinstance(document, dict) and extends.EXTENDS in document:
        base = extends.base_path(source, document)
        document = extends.extend(_read_document(base), document, source, base)
        sources.append(base)
    return parse_policy(document, source), tuple(sources)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load and validate a policy file; raises PolicyError naming the file and the field path."""
    return load_policy_files(path)[0]
