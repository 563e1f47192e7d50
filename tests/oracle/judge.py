"""Read `strace -ff -y` output and judge it: what the behavioural oracle counts as a violation.

Standard library only: it runs inside the oracle image (tests/oracle/driver.py) and in the unit
tests on this machine (tests/unit/test_oracle_judge.py feeds it strace lines and checks that each
kind of violation is caught).

A command line is judged by its MODE:

    inspect   an allowed command of either policy (ls, cat, grep, git ...): it may read the
              workspace and the image's own system files, and write nothing at all
    write     a command that runs only after a human's approval (rm, mv): it may also change
              /workspace and /tmp
    execute   the execution policy's test runners (pytest, make test): like `write` (they write
              caches and temporary files); what the repository's own tests do is theirs, not the
              policy's (the fixture has no tests)

and a violation is any of:

    exec      an execve/execveat, successful or not, of anything but the program named on the
              line and its own helpers (HELPERS): never a pager, an editor, a shell, ssh, gpg, a
              filter, textconv, fsmonitor or hook program
    write     under `inspect`: any open for writing (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND,
              O_TMPFILE), rename, link, unlink, mkdir, rmdir, mknod, chmod, chown, utimes, truncate
              or xattr change, anywhere, except opening /dev/null for writing and the command's own
              scratch files: a file it created new in /tmp (O_CREAT|O_EXCL, or O_TMPFILE) and then
              uses and removes (tac keeps unseekable input there, sort its runs). /tmp is the Pod's
              own size-capped tmpfs, empty when the command starts and gone with the Pod, so such a
              file can reach neither the workspace nor another job. Under `write` and `execute`:
              any of these outside /workspace and /tmp
    read      an open for reading (successful or not) of anything outside /workspace and /tmp
              but the entries of READ_ALLOWED, each for the programs it names and with its reason
              (the loader, the locale, and each program's own files: file's magic, python's
              library, user names for the programs that print owners ...), and a directory listing
              (getdents) of anything outside; `/` itself may be opened (find -samefile does, and
              never lists it), not listed. Everything else counts: another program's data under
              /usr, any /proc/self file the program has no use for, /etc/passwd for git
    socket    any socket(), socketpair(), connect(), bind(), listen(), sendto() or sendmsg(),
              except glibc's attempt to reach the name service cache (an AF_UNIX socket connected
              to /var/run/nscd/socket, which does not exist in the image)

Metadata look-ups (stat, access, readlink, getdents of a directory already open) are not judged: they
reveal that a system file exists, never its content.
"""

from __future__ import annotations

import os
import posixpath
import re

#: Programs each program may execute: itself, and for git its own binary again (git runs
#: `git status` inside a submodule). Matched on the basename; the directory must be on PATH
#: (/usr/local/bin, /usr/bin, /bin) or git's exec path.
HELPERS = {
    "git": {"git"},
    "pytest": {"pytest", "python3", "python3.11"},
    "python3": {"python3", "python3.11"},
}
EXEC_DIRECTORIES = {"/usr/local/bin", "/usr/bin", "/bin", "/usr/lib/git-core"}

#: Where a command may open files for reading outside /workspace and /tmp (the judge's v2 allowlist):
#: (path, how it matches, the programs it is allowed for or None for every program, why). Anything
#: else outside the workspace is a violation, for every program: `/usr` as a whole is not allowed (a
#: program reading another program's data, or a time-zone file a date string named, is counted), nor
#: `/proc/self` as a whole, nor `/etc/passwd` and `/etc/group` for programs that print no user names.
#: /proc/<pid> of the command's own processes is read as /proc/self.
PYTHON = frozenset({"pytest", "python3"})
USER_NAMES = frozenset({"ls", "stat", "find", "tree", "du"})  # -l, -u/-g, -user/-group, -ls print owners
READ_ALLOWED = [
    # the dynamic loader and the C library, for every program
    ("/etc/ld.so.cache", "exact", None, "the dynamic loader's cache"),
    ("/etc/ld.so.preload", "exact", None, "the dynamic loader looks for it (absent in the image)"),
    ("/usr/lib/x86_64-linux-gnu/", "prefix", None, "shared libraries and glibc's gconv modules"),
    ("/lib/x86_64-linux-gnu/", "prefix", None, "shared libraries, by their pre-merged-/usr name"),
    ("/lib64/", "prefix", None, "the dynamic loader itself"),
    ("/usr/lib/locale/", "prefix", None, "the locale (LANG=C.UTF-8)"),
    ("/usr/share/locale/", "prefix", None, "message catalogues (C.UTF-8 has none; glibc looks)"),
    ("/etc/localtime", "exact", None, "the local time zone, for dates in output"),
    ("/usr/share/zoneinfo/Etc/UTC", "exact", None, "what the image's /etc/localtime links to"),
    ("/dev/null", "exact", None, "the null device"),
    ("/", "exact", None, "find -samefile opens / and never lists it (listing / is judged apart)"),
    # each program's own files
    ("/etc/passwd", "exact", USER_NAMES, "user names of file owners"),
    ("/etc/group", "exact", USER_NAMES, "group names of file owners"),
    ("/etc/nsswitch.conf", "exact", USER_NAMES, "how glibc looks user and group names up"),
    ("/proc/filesystems", "exact", frozenset({"ls", "find", "stat", "mv", "sed", "tree", "du"}),
     "libselinux asks which file systems exist"),
    ("/proc/self/maps", "exact", frozenset({"grep", "diff", "rg", "sort", "git"}),
     "gnulib's stack-overflow handler and PCRE2's JIT read their own memory map"),
    ("/proc/self/mountinfo", "exact", frozenset({"find"}), "find -fstype and -xdev read the mount table"),
    ("/usr/share/finfo/", "prefix", frozenset({"tree"}), "tree --info reads its own global .info file"),
    ("/proc/self/cgroup", "exact", frozenset({"rg"}), "ripgrep sizes its thread pool by its own cgroup"),
    ("/proc/self/mountinfo", "exact", frozenset({"rg"}), "ripgrep finds its cgroup's mount"),
    ("/sys/fs/cgroup/cpu", "prefix", frozenset({"rg", "pytest", "python3"}), "the container's CPU quota (thread pools)"),
    ("/sys/devices/system/cpu/", "prefix", frozenset({"git", "rg", "sort", "grep"}), "how many CPUs there are (threads)"),
    ("/proc/meminfo", "exact", frozenset({"sort"}), "sort sizes its buffer by the memory there is"),
    ("/proc/cpuinfo", "exact", frozenset({"sort", "git", "rg"}), "how many CPUs there are"),
    ("/proc/stat", "exact", frozenset({"sort", "git", "rg"}), "how many CPUs are online"),
    ("/usr/share/git-core/", "prefix", frozenset({"git"}), "git's own templates and data"),
    ("/etc/magic", "exact", frozenset({"file"}), "file(1)'s local magic (empty in the image)"),
    ("/etc/magic.mgc", "exact", frozenset({"file"}), "file(1)'s local compiled magic (absent)"),
    ("/usr/lib/file/magic.mgc", "exact", frozenset({"file"}), "file(1)'s compiled magic"),
    ("/usr/share/misc/magic.mgc", "exact", frozenset({"file"}), "file(1)'s compiled magic, by its other name"),
    ("/usr/share/file/", "prefix", frozenset({"file"}), "file(1)'s magic directory"),
    ("/usr/bin", "exact", PYTHON, "python looks for its prefix beside its executable"),
    ("/usr/bin/", "prefix", PYTHON, "python's landmark files (pyvenv.cfg, ._pth) and the pytest script"),
    ("/usr/pyvenv.cfg", "exact", PYTHON, "python looks for a virtual environment"),
    ("/usr/lib/python3.11", "prefix", PYTHON, "the standard library"),
    ("/usr/lib/python311.zip", "exact", PYTHON, "the standard library's zip (absent)"),
    ("/usr/lib/python3/dist-packages", "prefix", PYTHON, "pytest and its dependencies (Debian packages)"),
    ("/usr/local/lib/python3.11/dist-packages", "prefix", PYTHON, "site packages (empty)"),
    ("/etc/mime.types", "exact", PYTHON, "python's mimetypes"),
    ("/proc/self/", "prefix", PYTHON, "python reads its own status and file descriptors"),
    ("/usr/bin/make", "exact", frozenset({"make"}), "make finds itself"),
]
#: Where a write is allowed in `write` and `execute` mode (plus /dev/null always); the two
#: directories themselves too: `mv x .` first tries to rename x onto `.`, which the kernel refuses.
WRITE_ALLOWED_PREFIXES = ("/workspace/", "/tmp/")
WRITE_ALLOWED_DIRECTORIES = ("/workspace", "/tmp")

WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND", "O_TMPFILE")
OPENS = {"open", "openat", "openat2", "creat"}
EXECS = {"execve", "execveat"}
# syscall -> positions of its path arguments (each possibly preceded by a directory descriptor)
CHANGES = {
    "rename": (0, 1), "renameat": (1, 3), "renameat2": (1, 3), "link": (0, 1), "linkat": (1, 3),
    "symlink": (1,), "symlinkat": (2,), "unlink": (0,), "unlinkat": (1,), "mkdir": (0,), "mkdirat": (1,),
    "rmdir": (0,), "mknod": (0,), "mknodat": (1,), "chmod": (0,), "fchmodat": (1,), "chown": (0,),
    "lchown": (0,), "fchownat": (1,), "utime": (0,), "utimes": (0,), "utimensat": (1,), "futimesat": (1,),
    "truncate": (0,), "setxattr": (0,), "lsetxattr": (0,), "removexattr": (0,), "lremovexattr": (0,),
    # on a descriptor: the path comes from -y's decoration
    "fchmod": (0,), "fchown": (0,), "ftruncate": (0,), "fsetxattr": (0,), "fremovexattr": (0,),
}
SOCKETS = {"socket", "socketpair", "connect", "bind", "listen", "sendto", "sendmsg", "sendmmsg"}
PROCESS = {"chdir", "fchdir"}
LISTINGS = {"getdents", "getdents64"}
TRACED = sorted(OPENS | EXECS | set(CHANGES) | SOCKETS | PROCESS | LISTINGS)
NSCD_SOCKET = "/var/run/nscd/socket"

_LINE = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+= (?P<result>.*)$")
_DECORATED = re.compile(r"^(?:AT_FDCWD|-?\d+)<(?P<path>.*)>(?:\(deleted\))?$")


def split_arguments(text: str) -> list[str]:
    """Split strace's argument list at top-level commas (quotes, brackets, braces respected)."""
    parts, depth, current, quoted, escaped = [], 0, [], False, False
    for char in text:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char in "[{(<":
            depth += 1
        elif char in "]})>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if current or parts:
        parts.append("".join(current).strip())
    return parts


def unquote(argument: str) -> str | None:
    """A strace string argument ("..."), C escapes decoded; None if it is not a string."""
    argument = argument.strip()
    if argument.endswith("..."):
        argument = argument[:-3]
    if len(argument) < 2 or argument[0] != '"' or argument[-1] != '"':
        return None
    raw = argument[1:-1]
    return raw.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode(
        "utf-8", "surrogateescape")


def decorated_path(argument: str) -> str | None:
    """The path -y shows for a descriptor argument (`3</workspace/a>`, `AT_FDCWD</workspace>`)."""
    match = _DECORATED.match(argument.strip())
    return match.group("path") if match else None


def _resolve(base: str | None, path: str, cwd: str) -> str:
    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(base or cwd, path))


def read_allowed(path: str, own_pids: frozenset[int] = frozenset(), program: str = "") -> bool:
    """Whether `program` may read `path`: the workspace, its own /tmp, or an entry of READ_ALLOWED."""
    if path in ("/workspace", "/tmp") or path.startswith(("/workspace/", "/tmp/")):
        return True
    # the command's own processes by number (/proc/self/maps reads back as /proc/PID/maps)
    match = re.match(r"^/proc/(\d+)(/|$)", path)
    if match is not None:
        if int(match.group(1)) not in own_pids:
            return False
        path = "/proc/self" + path[match.end(1):]
    for allowed, how, programs, _why in READ_ALLOWED:
        if programs is not None and program not in programs:
            continue
        if path == allowed or (how == "prefix" and path.startswith(allowed)):
            return True
    return False


def write_allowed(path: str, mode: str, scratch: set[str] | frozenset[str] = frozenset()) -> bool:
    if path == "/dev/null" or path in scratch:
        return True
    if mode == "inspect":
        return False
    return path.startswith(WRITE_ALLOWED_PREFIXES) or path in WRITE_ALLOWED_DIRECTORIES


def _creates_scratch(path: str, flags: str) -> bool:
    """A private temporary file: created new (O_CREAT|O_EXCL) in /tmp, or unnamed (O_TMPFILE)."""
    if "O_TMPFILE" in flags:
        return path == "/tmp" or path.startswith("/tmp/")
    return path.startswith("/tmp/") and "O_CREAT" in flags and "O_EXCL" in flags


def exec_allowed(program: str, path: str) -> bool:
    helpers = HELPERS.get(program, {program})
    return posixpath.basename(path) in helpers and posixpath.dirname(path) in EXEC_DIRECTORIES


def judge_trace(lines_by_pid: dict[int, list[str]], program: str, mode: str,
                workspace: str = "/workspace") -> list[str]:
    """Violations in one command's trace (strace -ff: one list of lines per process)."""
    violations: list[str] = []
    own_pids = frozenset(lines_by_pid)
    scratch: set[str] = set()
    for pid, lines in sorted(lines_by_pid.items()):
        cwd = workspace
        for line in lines:
            match = _LINE.match(line)
            if not match:
                continue  # signals, exits, "+++ exited" and the like
            name, result = match.group("name"), match.group("result")
            args = split_arguments(match.group("args"))
            failed = result.startswith("-1 ")
            for argument in args[:1]:
                where = decorated_path(argument)
                if where and argument.startswith("AT_FDCWD"):
                    cwd = where
            if name in EXECS:
                path = unquote(args[1] if name == "execveat" else args[0]) or "?"
                path = _resolve(None, path, cwd)
                if not exec_allowed(program, path):
                    violations.append(f"exec {path} ({'failed' if failed else 'ran'})")
            elif name in OPENS:
                at = name in ("openat", "openat2")
                raw = unquote(args[1] if at else args[0]) or "?"
                base = decorated_path(args[0]) if at else None
                path = decorated_path(result.split(" ", 1)[0]) if not failed else None
                path = path or _resolve(base, raw, cwd)
                flags = args[2] if at and len(args) > 2 else (args[1] if len(args) > 1 else "")
                writing = name == "creat" or any(flag in flags for flag in WRITE_FLAGS)
                if writing and not failed and _creates_scratch(path, flags):
                    scratch.add(path)
                elif writing and not write_allowed(path, mode, scratch):
                    violations.append(f"write open {path} {flags}")
                elif not writing and not read_allowed(path, own_pids, program):
                    violations.append(f"read {path}")
            elif name in LISTINGS:
                path = decorated_path(args[0]) if args else None
                if path is None or path == "/" or not read_allowed(path, own_pids, program):
                    violations.append(f"list {path}")
            elif name in CHANGES:
                for position in CHANGES[name]:
                    if position >= len(args):
                        continue
                    raw = unquote(args[position])
                    if raw is None:  # a descriptor (fchmod 3</x>) or AT_FDCWD-relative empty path
                        path = decorated_path(args[position]) or "?"
                    else:
                        # a directory descriptor before the path (the *at calls): -y shows where it is
                        base = decorated_path(args[position - 1]) if position > 0 else None
                        path = _resolve(base, raw, cwd)
                    if not write_allowed(path, mode, scratch):
                        violations.append(f"{name} {path}")
            elif name in SOCKETS:
                text = match.group("args")
                if name == "socket" and text.startswith("AF_UNIX"):
                    continue  # judged at connect
                if name == "connect" and f'sun_path="{NSCD_SOCKET}"' in text:
                    continue
                violations.append(f"{name}({text[:120]})")
            elif name == "chdir" and not failed:
                cwd = _resolve(None, unquote(args[0]) or "?", cwd)
            elif name == "fchdir" and not failed:
                cwd = decorated_path(args[0]) or cwd
    return violations


def read_trace_files(prefix: str) -> dict[int, list[str]]:
    """The files `strace -ff -o PREFIX` wrote: PREFIX.<pid>, one per process."""
    directory, stem = os.path.split(prefix)
    traces: dict[int, list[str]] = {}
    for name in os.listdir(directory):
        if name.startswith(stem + "."):
            with open(os.path.join(directory, name), encoding="utf-8", errors="surrogateescape") as handle:
                traces[int(name[len(stem) + 1:])] = handle.read().splitlines()
    return traces
