"""Words programs scan outside their option parser: the policy's table is git's, of the image's version.

`scanned_words` in the policy (git diff's --no-index, git log's first pass, revision.c's --) were read
from the source of one git version, `programs.git.version`. These tests hold that table to the real
program: the version must be the sandbox image's (and the arity probe's pin), and git of that version
must really act on each scanned word where the policy would otherwise read it as another option's
value. The attack rows are in tests/support/policy_cases/scanned_words.py.
"""

import os
import shutil
import subprocess

import pytest

from safeagent.policy.arguments import scanned_why
from tests.unit.policy.test_arity import IMAGE, PINNED_VERSIONS


def _git_version_of_the_policy(policy) -> str:
    return policy.programs["git"].version


def test_the_table_names_the_pinned_git_version(inspect_policy):
    """The arity probe fails when the image's git is not the pin; this ties the table to the same pin."""
    version = _git_version_of_the_policy(inspect_policy)
    assert PINNED_VERSIONS["git"] == f"git version {version}.", (
        f"the policy's scanned_words were read from git {version}, the pinned git is {PINNED_VERSIONS['git']!r}: "
        "read the new version's builtin/diff.c, builtin/log.c, builtin/rev-list.c and revision.c again, "
        "update the scanned_words and programs.git.version")


def test_the_table_names_the_sandbox_images_git(inspect_policy):
    """Asked of the image itself: its git must be the version the table was read from."""
    docker = shutil.which("docker")
    present = docker and subprocess.run([docker, "image", "inspect", IMAGE], capture_output=True,
                                        timeout=60).returncode == 0
    if not present:
        if os.environ.get("SAFEAGENT_ARITY_PROBE") == "image":
            pytest.fail(f"SAFEAGENT_ARITY_PROBE=image but the image {IMAGE} is not available")
        pytest.skip(f"the sandbox image {IMAGE} is not here (make images)")
    done = subprocess.run([docker, "run", "--rm", "--network", "none", IMAGE, "git", "--version"],
                          capture_output=True, text=True, timeout=120)
    version = _git_version_of_the_policy(inspect_policy)
    assert done.stdout.startswith(f"git version {version}."), (
        f"the image's git is {done.stdout.strip()!r}; the policy's scanned_words were read from git {version}")


# --- git of that version really acts on each scanned word in a value slot (on this machine, if it is) ---

def _host_git_matches(policy) -> bool:
    if shutil.which("git") is None:
        return False
    line = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=20).stdout
    return line.startswith(f"git version {_git_version_of_the_policy(policy)}.")


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("scanned")
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.invalid", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@example.invalid", "LC_ALL": "C", "GIT_PAGER": "cat"}
    (root / "a").write_text("one\n")
    (root / "b").write_text("two\n")
    for argv in (["init", "-q"], ["add", "a"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *argv], cwd=root, env=env, check=True, capture_output=True)
    return root, env


#: (argv after git, what git prints when it acted on the scanned word, the word and the option that
#: the policy reads it as the value of). `b` is untracked: only --no-index compares it.
EVIDENCE = [
    (["diff", "--src-prefix", "--no-index", "a", "b"], "+two", "git diff", "--no-index"),
    (["diff", "--line-prefix", "--no-index", "a", "b"], "--no-index+two", "git diff", "--no-index"),
    (["log", "--author", "--mailmap"], "requires a value", "git log", "--mailmap"),
    (["log", "--grep", "--source"], "requires a value", "git log", "--source"),
    (["log", "--grep", "-q"], "requires a value", "git log", "-q"),
    (["log", "--grep", "--decorate-refs=x"], "requires a value", "git log", "--decorate-refs=x"),
    (["log", "--grep", "-L1,1:a"], "requires a value", "git log", "-L1,1:a"),
    (["log", "--grep", "--", "a"], "requires a value", "git log", "--"),
    (["rev-list", "--grep", "--", "HEAD"], "requires a value", "git rev-list", "--"),
]


@pytest.mark.parametrize(("argv", "evidence", "command", "word"), EVIDENCE, ids=lambda item: str(item))
def test_git_acts_on_the_scanned_word_in_a_value_slot(inspect_policy, repository, argv, evidence, command, word):
    if not _host_git_matches(inspect_policy):
        pytest.skip("this machine's git is not the version the table was read from")
    root, env = repository
    done = subprocess.run(["git", *argv], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert evidence in done.stdout + done.stderr, (argv, done.stdout, done.stderr)
    compiled = inspect_policy._compiled.programs["git"]
    for name in command.split()[1:]:
        compiled = compiled.subcommands[name]
    assert scanned_why(compiled, word), f"{command}: {word} is not in the policy's scanned_words"


def test_attached_values_are_one_word_to_git(inspect_policy, repository):
    """The way out the refusal suggests: attached, the word is the value, and git runs normally."""
    if not _host_git_matches(inspect_policy):
        pytest.skip("this machine's git is not the version the table was read from")
    root, env = repository
    for argv in (["log", "--grep=--mailmap", "--oneline"], ["diff", "--src-prefix=--no-index", "HEAD"]):
        done = subprocess.run(["git", *argv], cwd=root, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (argv, done.stderr)


def test_scanned_words_need_the_version_they_were_read_from(tmp_path):
    from safeagent.policy import PolicyError, load_policy

    path = tmp_path / "p.yaml"
    body = ("version: 1\nname: p\nmax_output_kb: 8\nmax_file_writes: 1\nprograms:\n  ls:\n{version}"
            "    scanned_words:\n      - {{names: [--x], why: is read anywhere}}\n")
    path.write_text(body.format(version=""))
    with pytest.raises(PolicyError, match="version"):
        load_policy(path)
    path.write_text(body.format(version='    version: "9.1"\n'))
    assert scanned_why(load_policy(path)._compiled.programs["ls"], "--x=1")
