#!/usr/bin/env python3
"""OCI runtime shim for hosts whose root lacks CAP_SYS_RESOURCE in its bounding set.

runc refuses to start a container that asks for a capability the runtime itself cannot hold, so
`docker run --privileged` (every kind node) fails on such hosts. Docker runs this file instead of
runc (host-setup.sh registers it as the default runtime, only on hosts where the lack is detected).
It deletes CAP_SYS_RESOURCE from the capability sets in the bundle's config.json on `create`/`run`
and from the process JSON on `exec`, then replaces itself with the real runc and the same arguments.
"""
import json
import os
import sys

REAL_RUNC = os.environ.get("SAFEAGENT_REAL_RUNC", "/usr/sbin/runc")
DROPPED = "CAP_SYS_RESOURCE"
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def option_value(args, *names):
    """Value of the first of `names` in args (`--x v`, `-x v` or `--x=v`), or None."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def strip_caps(path, process_key):
    with open(path) as f:
        doc = json.load(f)
    process = doc.get(process_key, {}) if process_key else doc
    caps = process.get("capabilities") or {}
    changed = False
    for name in CAP_SETS:
        if DROPPED in (caps.get(name) or []):
            caps[name] = [c for c in caps[name] if c != DROPPED]
            changed = True
    if changed:
        tmp = path + ".safeagent-tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)


def main():
    args = sys.argv[1:]
    commands = [a for a in args if a in ("create", "run", "exec")]
    if commands:
        rest = args[args.index(commands[0]) + 1:]
        if commands[0] == "exec":
            process_file = option_value(rest, "--process", "-p")
            if process_file:
                strip_caps(process_file, None)
        else:
            bundle = option_value(rest, "--bundle", "-b") or os.getcwd()
            strip_caps(os.path.join(bundle, "config.json"), "process")
    os.execv(REAL_RUNC, [REAL_RUNC] + args)


if __name__ == "__main__":
    main()
