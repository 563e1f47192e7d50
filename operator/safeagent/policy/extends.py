"""A policy file may extend another: `extends: policy.yaml` (issue 11, item 5).

The extending file names its base by file name, in its own directory (no path: a policy cannot
pull in a file from elsewhere), one level deep (a base cannot extend). The result is the base
with the extension's additions, and the rules are deliberately narrow so that reading the
extension tells everything it changes:

  version, name, description,     replaced by the extension's value when it sets one
  max_output_kb, max_file_writes
  programs, option_sets           the extension adds entries; one the base already has is refused
                                  (an extension cannot change or weaken a base rule)
  require_approval                the base's rules, then the extension's
  limits, characters, paths       refused: these apply to every program of the base, so a policy
                                  that needs other values copies its base instead
"""

from __future__ import annotations

import os
from typing import Any

from .errors import PolicyError

EXTENDS = "extends"
REPLACED = frozenset({"version", "name", "description", "max_output_kb", "max_file_writes"})
ADDED = frozenset({"programs", "option_sets"})
APPENDED = frozenset({"require_approval"})


def base_path(source: str, document: dict[str, Any]) -> str:
    """The file that `document` (read from `source`) extends, checked to be a sibling file name."""
    name = document[EXTENDS]
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise PolicyError(f"{source}: extends: must be the file name of a policy in the same directory, not {name!r}")
    return os.path.join(os.path.dirname(source), name)


def extend(base: object, extension: dict[str, Any], source: str, base_source: str) -> dict[str, Any]:
    """`base` with `extension`'s additions (see the module docstring); raises PolicyError."""
    if not isinstance(base, dict):
        raise PolicyError(f"{base_source}: the policy must be a mapping of keys, not {type(base).__name__}")
    if EXTENDS in base:
        raise PolicyError(f"{source}: extends: {base_source} extends another policy itself; only one level is allowed")
    merged = dict(base)
    for key, value in extension.items():
        if key == EXTENDS:
            continue
        if key in REPLACED:
            merged[key] = value
        elif key in ADDED:
            merged[key] = _added(key, base.get(key), value, source, base_source)
        elif key in APPENDED:
            if not isinstance(value, list):
                raise PolicyError(f"{source}: {key}: must be a list")
            merged[key] = [*(base.get(key) or []), *value]
        else:
            raise PolicyError(
                f"{source}: {key}: an extending policy cannot set {key!r} (it applies to every program of "
                f"its base); copy {os.path.basename(base_source)} instead"
            )
    return merged


def _added(key: str, base: object, additions: object, source: str, base_source: str) -> dict[str, Any]:
    if not isinstance(additions, dict):
        raise PolicyError(f"{source}: {key}: must be a mapping")
    current = dict(base) if isinstance(base, dict) else {}
    for name, rule in additions.items():
        if name in current:
            raise PolicyError(
                f"{source}: {key}.{name}: already defined in {os.path.basename(base_source)}; an extending "
                "policy adds entries and cannot change its base's"
            )
        current[name] = rule
    return current
