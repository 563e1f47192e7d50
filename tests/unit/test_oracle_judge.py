"""The oracle's judge (tests/oracle/judge.py) catches each kind of violation, from real strace lines.

The oracle passing means nothing unless its judge can fail: each row is a line strace -ff -y really
prints (shapes taken from the oracle's own traces) and the verdict the judge must give.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))
import judge  # noqa: E402

LOADER = 'openat(AT_FDCWD</workspace>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>'
EXEC_GIT = 'execve("/usr/bin/git", ["git", "status"], 0x7ffd /* 20 vars */) = 0'

ROWS = [
    # (program, mode, trace lines, expected violation prefixes; [] = clean)
    ("git", "inspect", [EXEC_GIT, LOADER], []),
    ("git", "inspect", ['execve("/usr/local/bin/git", ["git"], 0x1 /* 2 vars */) = -1 ENOENT (No such file or directory)', EXEC_GIT], []),
    ("git", "inspect", [EXEC_GIT, 'execve("/usr/lib/git-core/git", ["git", "status", "--porcelain=2"], 0x1 /* 2 vars */) = 0'], []),
    ("git", "inspect", [EXEC_GIT, 'execve("/bin/sh", ["sh", "-c", "less"], 0x1 /* 2 vars */) = 0'], ["exec /bin/sh"]),
    ("git", "inspect", [EXEC_GIT, 'execve("/usr/bin/less", ["less"], 0x1 /* 2 vars */) = -1 ENOENT (No such file or directory)'], ["exec /usr/bin/less"]),
    ("git", "inspect", [EXEC_GIT, 'execve("/usr/lib/git-core/git-remote-https", ["git-remote-https"], 0x1 /* 2 vars */) = 0'], ["exec /usr/lib/git-core/git-remote-https"]),
    ("ls", "inspect", ['execve("/workspace/ls", ["ls"], 0x1 /* 2 vars */) = 0'], ["exec /workspace/ls"]),
    ("git", "inspect", ['openat(AT_FDCWD</workspace>, ".git/index.lock", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 3</workspace/.git/index.lock>'], ["write open /workspace/.git/index.lock"]),
    ("git", "inspect", ['renameat(AT_FDCWD</workspace>, ".git/index.lock", AT_FDCWD</workspace>, ".git/index") = 0'], ["renameat /workspace/.git/index.lock", "renameat /workspace/.git/index"]),
    ("git", "write", ['renameat(AT_FDCWD</workspace>, ".git/index.lock", AT_FDCWD</workspace>, ".git/index") = 0'], []),
    ("rm", "write", ['unlinkat(AT_FDCWD</workspace>, "delete-me.txt", 0) = 0'], []),
    ("rm", "write", ['unlinkat(AT_FDCWD</workspace>, "../etc/x", 0) = -1 EACCES (Permission denied)'], ["unlinkat /etc/x"]),
    ("mv", "write", ['renameat2(4</etc>, "a", AT_FDCWD</workspace>, "b", RENAME_NOREPLACE) = -1 EACCES (Permission denied)'], ["renameat2 /etc/a"]),
    ("mv", "write", ['renameat2(AT_FDCWD</workspace>, "a", AT_FDCWD</workspace>, "/oracle/x", RENAME_NOREPLACE) = 0'], ["renameat2 /oracle/x"]),
    ("cat", "inspect", ['openat(AT_FDCWD</workspace>, "/dev/null", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</dev/null>'], []),
    ("cat", "inspect", ['openat(AT_FDCWD</workspace>, "/etc/shadow", O_RDONLY) = -1 EACCES (Permission denied)'], ["read /etc/shadow"]),
    ("cat", "inspect", ['openat(AT_FDCWD</workspace>, "../oracle/source", O_RDONLY) = 3</oracle/source>'], ["read /oracle/source"]),
    ("cat", "inspect", ['openat(3</workspace/src>, "../../etc/hostname", O_RDONLY) = -1 ENOENT (No such file or directory)'], ["read /etc/hostname"]),
    ("rg", "inspect", ['openat(AT_FDCWD</workspace>, "../.git/modules/sub/commondir", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)'], ["read /.git/modules/sub/commondir"]),
    ("grep", "inspect", ['openat(AT_FDCWD</workspace>, "/proc/self/maps", O_RDONLY) = 3</proc/7/maps>'], []),
    ("grep", "inspect", ['openat(AT_FDCWD</workspace>, "/proc/1/environ", O_RDONLY) = -1 EACCES (Permission denied)'], ["read /proc/1/environ"]),
    ("tac", "inspect", ['openat(AT_FDCWD</workspace>, "/tmp/tacX", O_RDWR|O_CREAT|O_EXCL, 0600) = 4</tmp/tacX>',
                        "ftruncate(4</tmp/tacX>(deleted), 0) = 0", 'unlink("/tmp/tacX") = 0'], []),
    ("tac", "inspect", ['openat(AT_FDCWD</workspace>, "/tmp/planted", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4</tmp/planted>'], ["write open /tmp/planted"]),
    ("ls", "inspect", ["fchmod(3</workspace/a>, 0777) = 0"], ["fchmod /workspace/a"]),
    # oracle finding: find -samefile opens / (never lists it); listing / or /etc is a violation
    ("find", "inspect", ['openat(AT_FDCWD</workspace>, "/", O_RDONLY|O_CLOEXEC) = 4</>'], []),
    ("find", "inspect", ['openat(AT_FDCWD</workspace>, "/", O_RDONLY|O_CLOEXEC) = 4</>', "getdents64(4</>, 0x5 /* 20 entries */, 32768) = 560"], ["list /"]),
    ("ls", "inspect", ["getdents64(3</workspace/src>, 0x5 /* 4 entries */, 32768) = 112"], []),
    ("ls", "inspect", ["getdents64(3</etc>, 0x5 /* 40 entries */, 32768) = 1200"], ["list /etc"]),
    ("ls", "inspect", ['socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 3',
                       'connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)'], []),
    ("git", "inspect", ['socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3'], ["socket(AF_INET"]),
    ("git", "inspect", ['connect(3, {sa_family=AF_UNIX, sun_path="/run/docker.sock"}, 110) = 0'], ["connect("]),
    # judge v2: the allowlist is per program, with reasons; /usr, /proc/self and /etc/passwd are not blanket
    ("git", "inspect", ['openat(AT_FDCWD</workspace>, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3</etc/passwd>'], ["read /etc/passwd"]),
    ("ls", "inspect", ['openat(AT_FDCWD</workspace>, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3</etc/passwd>'], []),
    ("cat", "inspect", ['openat(AT_FDCWD</workspace>, "/proc/self/environ", O_RDONLY) = 3</proc/7/environ>'], ["read /proc/7/environ"]),
    # found by the first v2 run at 20,000 lines: find -fstype reads its mount table, tree --info its own file
    ("find", "inspect", ['openat(AT_FDCWD</workspace>, "/proc/self/mountinfo", O_RDONLY) = 3</proc/7/mountinfo>'], []),
    ("cat", "inspect", ['openat(AT_FDCWD</workspace>, "/proc/self/mountinfo", O_RDONLY) = 3</proc/7/mountinfo>'], ["read /proc/7/mountinfo"]),
    ("tree", "inspect", ['openat(AT_FDCWD</workspace>, "/usr/share/finfo/global_info/.info", O_RDONLY) = -1 ENOENT (No such file or directory)'], []),
    ("find", "inspect", ['openat(AT_FDCWD</workspace>, "/usr/share/zoneinfo/Europe/Paris", O_RDONLY) = 3</usr/share/zoneinfo/Europe/Paris>'], ["read /usr/share/zoneinfo/Europe/Paris"]),
    ("git", "inspect", ['openat(AT_FDCWD</workspace>, "/usr/lib/python3.11/os.py", O_RDONLY) = 3</usr/lib/python3.11/os.py>'], ["read /usr/lib/python3.11/os.py"]),
    ("pytest", "execute", ['openat(AT_FDCWD</workspace>, "/usr/lib/python3.11/os.py", O_RDONLY) = 3</usr/lib/python3.11/os.py>'], []),
    ("file", "inspect", ['openat(AT_FDCWD</workspace>, "/usr/lib/file/magic.mgc", O_RDONLY) = 3</usr/lib/file/magic.mgc>'], []),
    ("git", "inspect", ['openat(AT_FDCWD</workspace>, "/usr/lib/file/magic.mgc", O_RDONLY) = 3</usr/lib/file/magic.mgc>'], ["read /usr/lib/file/magic.mgc"]),
    ("git", "inspect", [EXEC_GIT, 'execve("/usr/local/bin/gpg", ["gpg", "--status-fd=1"], 0x1 /* 2 vars */) = -1 ENOENT (No such file or directory)'], ["exec /usr/local/bin/gpg (failed)"]),
    ("git", "inspect", [EXEC_GIT, 'execve("/usr/bin/ssh-keygen", ["ssh-keygen", "-Y"], 0x1 /* 2 vars */) = -1 ENOENT (No such file or directory)'], ["exec /usr/bin/ssh-keygen (failed)"]),
    ("mv", "write", ['renameat2(AT_FDCWD</workspace>, "x", AT_FDCWD</workspace>, ".", RENAME_NOREPLACE) = -1 ENOENT (No such file or directory)'], []),
    ("mv", "inspect", ['renameat2(AT_FDCWD</workspace>, "x", AT_FDCWD</workspace>, ".", RENAME_NOREPLACE) = -1 ENOENT (No such file or directory)'], ["renameat2 /workspace/x", "renameat2 /workspace"]),
    ("ls", "inspect", ['chdir("/etc") = 0', 'open("passwd", O_RDONLY) = 3</etc/passwd>', 'open("shadow", O_RDONLY) = -1 EACCES (Permission denied)'], ["read /etc/shadow"]),
]


@pytest.mark.parametrize(("program", "mode", "lines", "expected"), ROWS, ids=[f"{row[0]}-{row[1]}-{i}" for i, row in enumerate(ROWS)])
def test_judge_row(program, mode, lines, expected):
    found = judge.judge_trace({7: lines}, program, mode)
    assert len(found) == len(expected), found
    for violation, prefix in zip(found, expected):
        assert violation.startswith(prefix), (violation, prefix)


def test_every_traced_syscall_is_judged():
    judged = judge.OPENS | judge.EXECS | set(judge.CHANGES) | judge.SOCKETS | judge.PROCESS | judge.LISTINGS
    assert set(judge.TRACED) == judged


def test_strace_strings_are_decoded():
    assert judge.unquote('"a\\nb\\x41\\303\\251"') == "a\nbAé"
    assert judge.split_arguments('AT_FDCWD</w>, "a, b", [1, 2], {x=1, y=2}, 0') == ['AT_FDCWD</w>', '"a, b"', "[1, 2]", "{x=1, y=2}", "0"]
