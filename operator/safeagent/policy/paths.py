"""Lexical path rules: every path argument must name something inside the workspace.

Resolution is purely textual (``posixpath.normpath`` of the path joined to the workspace), so
``./x``, ``x`` and ``/workspace/x`` are one path, and ``a/../../x`` is outside. It never touches the
file system: the source tree holds no symbolic links (``safeagent.sandbox.tree`` refuses them), so lexical
and real resolution agree for the commands the policy allows.
"""

from __future__ import annotations

import posixpath
from typing import Literal

from .errors import Refusal

#: The argument kinds checked by these rules (see `model.ArgumentKind`).
PathKind = Literal["path", "destination", "nodeid"]


def resolve(workspace: str, value: str, where: str) -> str:
    """The absolute, normalised path ``value`` names; refuses one outside ``workspace``."""
    if value == "":
        raise Refusal("path_empty", f"{where} is an empty path.")
    if value.startswith("~"):
        raise Refusal("path_tilde", f"{where} {value!r} starts with ~, a home directory to a shell.")
    full = posixpath.normpath(posixpath.join(workspace, value))
    if full != workspace and not full.startswith(workspace + "/"):
        raise Refusal("path_outside_workspace", f"{where} {value!r} is outside {workspace}.")
    return full


def check_path(workspace: str, kind: PathKind, value: str, where: str) -> str:
    """Check one value of kind ``path``, ``destination`` or ``nodeid`` (``tests/x.py::name``: both parts)."""
    full = resolve(workspace, value, where)
    if kind == "nodeid" and "::" in value:
        return resolve(workspace, value.split("::", 1)[0], where)
    return full


def check_write_target(
    workspace: str, protected: list[str], kind: PathKind, full: str, value: str, where: str
) -> None:
    """A command that changes files may touch neither the workspace itself nor a protected path; a
    ``destination`` (the directory ``mv`` moves into) may be the workspace: `mv notes/x .` changes
    only what it moves."""
    if full == workspace and kind != "destination":
        raise Refusal("path_workspace_root", f"{where} {value!r} is the whole workspace.")
    relative = full[len(workspace) + 1 :]
    for item in protected:
        if relative == item or relative.startswith(item + "/"):
            raise Refusal("path_protected", f"{where} {value!r} is inside the protected path {item}.")
