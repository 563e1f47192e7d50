"""A source that tries to replace the in-sandbox code (issue 8), shared by the cold Pod's test
(test_trust_base.py) and the warm Pod's (test_warm_pool.py) so that both meet the same attack.

It shadows the package (`safeagent/...` and `safeagent/sandbox/...`), every standard-library
module the in-sandbox code imports, and plants `sitecustomize`, `usercustomize` and a `.pth` file.
Each planted module, if safeagent's own code ever imported it, would print a forged record saying
"HIJACKED" and exit 0; a job run on it must instead get the real runner's record.
"""

from __future__ import annotations

import json

from clusterlib import hardened_pod, wait_for

FAKE_RECORD = (
    '{"kind":"safeagent.ca/runner-result","version":1,"exitCode":0,"stdout":"HIJACKED %s\\n",'
    '"changedFiles":{"complete":true}}'
)
# The in-sandbox modules: the cold Pod's runner and preparation step, and the warm Pod's runner,
# which runs the preparation step in its own process.
SANDBOX_MODULES = ("runner", "prepare", "tree", "digest", "gitconfig", "contract", "bundle", "warm", "channel",
                   "preflight")


def hostile_module(name: str) -> str:
    """A module that, if imported by safeagent's own code, forges a successful record and exits."""
    return (
        "import sys\n"
        f"sys.stdout.write({FAKE_RECORD % name!r} + '\\n')\n"
        "sys.stdout.flush()\n"
        "raise SystemExit(0)\n"
    )


def modules_the_sandbox_code_imports(kubectl, namespace: str) -> list[str]:
    """Top-level names of every module loaded once the in-sandbox code is imported, read in the
    sandbox image itself (its Python, its standard library), in a Pod in `namespace`."""
    probe = (
        "import sys\n"
        f"for name in {SANDBOX_MODULES!r}: __import__('safeagent.sandbox.' + name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    kubectl("-n", namespace, "create", "-f", "-",
            input=json.dumps(hardened_pod("modules", ["python3", "-I", "-c", probe])))
    wait_for(lambda: json.loads(kubectl("-n", namespace, "get", "pod", "modules", "-o", "json").stdout)
             ["status"].get("phase") == "Succeeded", timeout=120, what="the module probe Pod")
    names = kubectl("-n", namespace, "logs", "modules").stdout.split()
    assert {"selectors", "subprocess", "socket", "hmac", "safeagent"} <= set(names), names
    return names


def hostile_files(kubectl, namespace: str) -> dict[str, str]:
    """The hostile source: its files by path (the module probe runs in `namespace`)."""
    modules = modules_the_sandbox_code_imports(kubectl, namespace)
    files = {f"{name}.py": hostile_module(name) for name in modules if name.isidentifier()}
    for part in ("__init__", "runner", "prepare", "tree", "digest", "gitconfig", "bundle"):
        files[f"safeagent/{part}.py"] = hostile_module(f"safeagent.{part}")
    for part in ("__init__", *SANDBOX_MODULES):
        files[f"safeagent/sandbox/{part}.py"] = hostile_module(f"safeagent.sandbox.{part}")
    files["sitecustomize.py"] = hostile_module("sitecustomize")
    files["usercustomize.py"] = hostile_module("usercustomize")
    files["zz-hijack.pth"] = "import os; os.write(1, b'HIJACKED by a .pth file\\n')\n"
    return files


def assert_the_real_runner_ran(status: dict, files: dict[str, str]) -> None:
    """`ls` on the hostile source ran, and the job's record is the real runner's: no forged line,
    the listing of the source's top level, no file changed."""
    top_level = sorted({path.split("/")[0] for path in files})
    assert "HIJACKED" not in json.dumps(status)
    assert (status["phase"], status["exitCode"]) == ("Succeeded", 0), status.get("message")
    assert status["stdout"] == "".join(f"{name}\n" for name in top_level)
    assert status["changedFiles"]["total"] == 0 and status["changedFiles"]["complete"] is True
