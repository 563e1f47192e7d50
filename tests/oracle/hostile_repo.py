"""Build hostile git repositories for the tests (standard library and the git command line only).

Used by the unit tests on this machine and, inside the oracle image, by the behavioural oracle
(tests/oracle/driver.py): the same files either way. Every place git reads settings from is filled
with settings that run a program, read a file outside the repository or talk to the network:

    top-level .git/config, .git/info/attributes, .gitattributes, hooks
    a submodule whose git directory is absorbed into .git/modules/sub (sub/.git is a gitfile),
      listed in .gitmodules with `ignore = none` (status enters it; git refuses `update = !program`
      there, so that one is in .git/config)
    an untracked nested repository vendor/lib/.git with its own hostile config and attributes
    files named like options (-rf, --output=x, -n, --exec=sh) and like refs (HEAD, main)
    commits signed in each armor git knows (gpg, x509, ssh: git picks gpg, gpgsm or ssh-keygen by
    the signature's first line, no configuration needed) at the tip of main, and a signed tag; the
    signatures are well-formed but never valid (no signing tool is needed to build them, and a
    command that asks for a verification runs the program all the same, which the oracle sees)
    a reflog, a stash, notes, a mailmap and a submodule

`worktree_fixture` is the ordinary case (a repository at the top); `bare_fixture` is a source whose
top level is itself a (bare) git directory. `PAYLOAD` runs `sh`, so a tracer sees any attempt, and
appends to a marker file, so a test without a tracer sees it too.
"""

from __future__ import annotations

import os
import subprocess

IDENTITY = {
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Fixture Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
}


def _environment(date: int) -> dict[str, str]:
    stamp = f"{1_700_000_000 + date * 3600} +0000"
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        **IDENTITY,
    }


_clock = [0]


def git(directory: str, *args: str) -> str:
    _clock[0] += 1
    done = subprocess.run(["git", *args], cwd=directory, env=_environment(_clock[0]), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {directory}: {done.stderr.strip()}")
    return done.stdout


def write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def payload(marker: str) -> str:
    return f"sh -c 'echo ran >> {marker}'"


def hostile_config(marker: str) -> str:
    """Settings that each run a program, read outside, or reach the network."""
    run = payload(marker)
    return (
        "[core]\n"
        f'\tfsmonitor = "{run}"\n'
        f'\tpager = "{run}"\n'
        f'\teditor = "{run}"\n'
        f'\tsshCommand = "{run}"\n'
        f'\taskPass = "{run}"\n'
        f'\tgitProxy = "{run}"\n'
        "\thooksPath = hooks-here\n"
        "\tattributesFile = /etc/gitattributes-outside\n"
        "\texcludesFile = /etc/passwd\n"
        "\tsplitIndex = true\n"
        "\tuntrackedCache = true\n"
        "[include]\n"
        "\tpath = /etc/gitconfig-outside\n"
        "[includeIf \"gitdir:/\"]\n"
        "\tpath = /etc/gitconfig-outside-if\n"
        "[diff]\n"
        f'\texternal = "{run}"\n'
        "\tautoRefreshIndex = true\n"
        "\tignoreSubmodules = none\n"
        '[diff "evil"]\n'
        f'\ttextconv = "{run}"\n'
        f'\tcommand = "{run}"\n'
        '[filter "evil"]\n'
        f'\tclean = "{run}"\n'
        f'\tsmudge = "{run}"\n'
        f'\tprocess = "{run}"\n'
        '[merge "evil"]\n'
        f'\tdriver = "{run}"\n'
        "[pager]\n"
        f'\tlog = "{run}"\n'
        f'\tdiff = "{run}"\n'
        f'\tstatus = "{run}"\n'
        "[alias]\n"
        f'\tst = "!{run}"\n'
        "[log]\n"
        "\tshowSignature = true\n"
        "[pretty]\n"
        '\tsig = "%G? %GS %GK"\n'
        "[format]\n"
        '\tpretty = "%+G?"\n'
        "[stash]\n"
        "\tshowPatch = true\n"
        "[gpg]\n"
        f'\tprogram = "{run}"\n'
        "[mailmap]\n"
        "\tfile = /etc/passwd\n"
        "[blame]\n"
        "\tignoreRevsFile = /etc/hostname\n"
        "[credential]\n"
        f'\thelper = "!{run}"\n'
        "[status]\n"
        "\tsubmoduleSummary = true\n"
        "[submodule]\n"
        "\trecurse = true\n"
        '[submodule "sub"]\n'
        "\tignore = none\n"
        f'\tupdate = "!{run}"\n'
        "[protocol]\n"
        "\tallow = always\n"
        "[uploadpack]\n"
        f'\tpackObjectsHook = "{run}"\n'
        "[feature]\n"
        "\tmanyFiles = true\n"
        '[remote "origin"]\n'
        f'\turl = "ext::{run}"\n'
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
        "\tpromisor = true\n"
        '[branch "main"]\n'
        "\tremote = origin\n"
        "\tmerge = refs/heads/main\n"
    )


ATTRIBUTES = "* diff=evil filter=evil merge=evil\n*.txt text eol=crlf\n"
HOOKS = ("pre-commit", "post-checkout", "post-index-change", "reference-transaction", "fsmonitor-watchman",
         "pre-auto-gc", "post-rewrite")


def _poison(git_dir: str, marker: str) -> None:
    """Append the hostile settings to a git directory's config, attributes and hooks."""
    with open(os.path.join(git_dir, "config"), "a") as handle:
        handle.write(hostile_config(marker))
    write(os.path.join(git_dir, "info", "attributes"), ATTRIBUTES)
    for hook in HOOKS:
        write(os.path.join(git_dir, "hooks", hook), f"#!/bin/sh\n{payload(marker)}\n", 0o755)


def _repository(path: str, files: dict[str, str]) -> None:
    os.makedirs(path, exist_ok=True)
    git(path, "init", "-q", "-b", "main", ".")
    for name, text in files.items():
        write(os.path.join(path, name), text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first commit")


#: The first line of each signature armor git 2.39 knows (gpg-interface.c), and the program it runs.
SIGNATURE_ARMORS = {
    "gpg": ("-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----"),
    "x509": ("-----BEGIN SIGNED MESSAGE-----", "-----END SIGNED MESSAGE-----"),
    "ssh": ("-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"),
}


def _armor(kind: str) -> list[str]:
    begin, end = SIGNATURE_ARMORS[kind]
    return [begin, "", "iQEzBAABCAAdFiEEZml4dHVyZSBzaWduYXR1cmUgbmV2ZXIgdmFsaWQ=", "=fixt", end]


def _signed_commit(root: str, parent: str, kind: str) -> str:
    """A commit object with a `gpgsig` header of the given armor, on top of `parent` (same tree)."""
    body = git(root, "cat-file", "commit", parent)
    header, _, message = body.partition("\n\n")
    lines = [line for line in header.splitlines() if not line.startswith("parent ")]
    lines.insert(1, f"parent {parent}")
    signature = _armor(kind)
    lines.append("gpgsig " + signature[0])
    lines += [" " + line for line in signature[1:]]
    text = "\n".join(lines) + f"\n\nsigned with a {kind} armor\n"
    done = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=root, input=text,
                          env=_environment(0), capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def _signed_history(root: str) -> None:
    """main gains three signed commits (gpg, x509, ssh) on its tip, with reflog entries; v2 is a signed
    tag; the stash holds a change; notes annotate HEAD."""
    tip = git(root, "rev-parse", "HEAD").strip()
    for kind in SIGNATURE_ARMORS:
        tip = _signed_commit(root, tip, kind)
        git(root, "update-ref", "-m", f"signed ({kind})", "refs/heads/main", tip)
        git(root, "branch", "-f", f"signed-{kind}", tip)
    tag = "\n".join([f"object {tip}", "type commit", "tag v2", "tagger Fixture Author <author@example.invalid> "
                     "1700000000 +0000", "", "a signed tag", *_armor("gpg")]) + "\n"
    done = subprocess.run(["git", "hash-object", "-t", "tag", "-w", "--stdin"], cwd=root, input=tag,
                          env=_environment(0), capture_output=True, text=True, timeout=60, check=True)
    git(root, "update-ref", "refs/tags/v2", done.stdout.strip())
    git(root, "notes", "add", "-m", "a note on the signed tip", "HEAD")
    git(root, "notes", "add", "-m", "a note on the first commit", "HEAD~5")


def worktree_fixture(root: str, marker: str) -> str:
    """A hostile repository at `root` (created); returns root."""
    _repository(root, {
        "README.md": "# fixture\n\nhello world\n",
        "src/app.py": "def main():\n    return 'TODO: fix'\n",
        "src/util.txt": "alpha\nbeta\ngamma\n",
        ".gitattributes": ATTRIBUTES,
        ".mailmap": "Someone Else <else@example.invalid> Fixture Author <author@example.invalid>\n",
        "-rf": "a file named like an option\n",
        "--output=x": "another\n",
        "-n": "n\n",
        "--exec=sh": "exec\n",
        "HEAD": "a file named like a ref\n",
        "main": "a file named like a branch\n",
        "hooks-here/post-index-change": f"#!/bin/sh\n{payload(marker)}\n",
        "data.bin": "\x00\x01binary\x02\n",
    })
    git(root, "tag", "v0")
    git(root, "tag", "-a", "-m", "version one", "v1")
    git(root, "branch", "side")
    # a submodule: its own repository, recorded as a gitlink, its git directory absorbed into
    # .git/modules/sub (so sub/.git is a gitfile), listed in .gitmodules with hostile settings
    _repository(os.path.join(root, "sub"), {"inner.txt": "inner\n", ".gitattributes": ATTRIBUTES})
    write(os.path.join(root, ".gitmodules"),
          '[submodule "sub"]\n\tpath = sub\n\turl = ./sub\n\tignore = none\n\tfetchRecurseSubmodules = true\n')
    git(root, "add", ".gitmodules", "sub")
    git(root, "commit", "-q", "-m", "add the submodule")
    git(root, "submodule", "absorbgitdirs")
    git(root, "checkout", "-q", "side")
    write(os.path.join(root, "src", "side.txt"), "on the side branch\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "side work")
    git(root, "checkout", "-q", "main")
    write(os.path.join(root, "src", "util.txt"), "alpha\nbeta\ngamma\ndelta\n")
    git(root, "commit", "-q", "-am", "more on main")
    git(root, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    _signed_history(root)
    # a stash (refs/stash and its reflog): a change put away, the work tree clean again
    write(os.path.join(root, "src", "util.txt"), "alpha\nbeta\ngamma\ndelta\nstashed\n")
    git(root, "stash", "push", "-q", "-m", "work put away")
    # an untracked nested repository
    _repository(os.path.join(root, "vendor", "lib"), {"lib.txt": "lib\n", ".gitattributes": ATTRIBUTES})
    # work in progress: a staged change, an unstaged change, a deletion, an untracked file,
    # a dirty submodule
    write(os.path.join(root, "src", "app.py"), "def main():\n    return 'fixed'\n")
    git(root, "add", "src/app.py")
    write(os.path.join(root, "README.md"), "# fixture\n\nhello there\n")
    os.unlink(os.path.join(root, "-n"))
    write(os.path.join(root, "notes.txt"), "untracked\n")
    write(os.path.join(root, "sub", "inner.txt"), "inner, changed\n")
    # only now the hostile settings, so that building the fixture ran none of them
    for git_dir in (os.path.join(root, ".git"), os.path.join(root, ".git", "modules", "sub"),
                    os.path.join(root, "vendor", "lib", ".git")):
        _poison(git_dir, marker)
    return root


def bare_fixture(root: str, marker: str, scratch: str) -> str:
    """A source whose top level is a bare repository with hostile settings; returns root."""
    work = os.path.join(scratch, "bare-work")
    _repository(work, {"a.txt": "a\n", "b.secret": "b\n", ".gitattributes": ATTRIBUTES})
    git(scratch, "clone", "-q", "--bare", "--no-local", work, root)
    _poison(root, marker)
    return root


if __name__ == "__main__":
    import sys

    kind, target, mark = sys.argv[1:4]
    if kind == "worktree":
        worktree_fixture(target, mark)
    else:
        bare_fixture(target, mark, sys.argv[4])
