"""Programs that are never allowed, whatever a policy file says: they run other programs or code.

A policy naming one of them is refused when it is loaded, and a command starting with one is denied
with a reason that says why (``wrapper_denied`` / ``interpreter_denied``) rather than the generic
``program_not_allowed``. The one exception is an exact invocation prefix such as ``python3 -m pytest``,
which selects the pytest rules and never python3 itself.
"""

from __future__ import annotations

import re
from typing import Literal

#: Run another command given as arguments (or change how it runs).
WRAPPERS = frozenset(
    """
    env sudo su doas pkexec runuser xargs timeout nohup nice ionice chroot setsid stdbuf unbuffer script
    time command builtin exec eval busybox toybox strace ltrace gdb valgrind watch flock parallel chrt
    taskset unshare nsenter capsh setpriv systemd-run firejail bwrap fakeroot proot sg newgrp
    catchsegv linux32 linux64 setarch prlimit cgexec numactl torsocks proxychains
    """.split()
)

#: Shells, interpreters, and tools with a built-in way to run commands or write arbitrary files.
INTERPRETERS = frozenset(
    """
    sh bash dash zsh ksh mksh pdksh csh tcsh fish ash rbash yash elvish nu xonsh
    python python2 python3 pypy pypy3 perl ruby irb node nodejs deno bun php lua luajit tclsh wish expect
    rscript julia java jshell groovy scala pwsh powershell osascript guile racket ocaml ghci
    awk gawk mawk nawk ed ex vi vim nvim view emacs nano pico less more most man info
    tar zip unzip rsync ssh scp sftp curl wget nc ncat netcat socat telnet ftp openssl gpg
    git-shell dd tee install cp ln chmod chown mkfifo mknod crontab at batch systemctl service
    pip pip3 npm npx yarn pnpm cargo go gcc cc clang
    """.split()
)

#: Programs whose own language can write files or run commands, allowed only with every script checked
#: by a grammar of harmless commands (`scripts.py`). A policy may list them only in that form
#: (model.script_rule_problem); a command naming one the policy does not list is an interpreter.
SCRIPTED = frozenset({"sed"})

_VERSIONED_INTERPRETER = re.compile(r"^(python|pypy|perl|ruby|php|lua|node|pip)[0-9][0-9.]*$")


def denial_kind(program: str) -> Literal["wrapper", "interpreter"] | None:
    """Return ``"wrapper"``, ``"interpreter"`` or None for a program name (its last path part)."""
    name = program.rsplit("/", 1)[-1].lower()
    if name in WRAPPERS:
        return "wrapper"
    if name in INTERPRETERS or name in SCRIPTED or _VERSIONED_INTERPRETER.match(name):
        return "interpreter"
    return None


def is_denied_program(program: str) -> bool:
    """Never allowed in a policy (a scripted program is allowed only in the form model.script_rule_problem checks)."""
    return denial_kind(program) is not None and program not in SCRIPTED
