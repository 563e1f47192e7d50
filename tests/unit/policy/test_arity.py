"""The arity probe: every option of every allowed program takes a value exactly as the real program does.

The policy's parser decides which word is an option's value and which is an operand (checked as a
path). If it believes an option takes no value while the program takes the next word, that word is
never checked (`git log --skip -O --output=/tmp/x`: git reads `-O` as --skip's value and writes
/tmp/x); if it believes the opposite, an operand escapes the path check. So the policy's belief is
tested against the binaries themselves, option by option, by running them with a sentinel word
(`--zz-arity-probe`, which no program knows) in the place that matters:

    belief                          probe                               the program must
    no value (flag)                 OPT SENTINEL                        reject SENTINEL as an unknown option
                                    -x%  (short only)                   reject % as an unknown option letter
    value, attached only            OPT SENTINEL                        reject SENTINEL (it did not take it)
      (`optional`)                  OPT=VALUE SENTINEL / -xVALUE ...    reject SENTINEL (one word, no more)
    value, always (next word        OPT SENTINEL                        NOT reject SENTINEL (it took it as the value)
      when not attached)            OPT VALUE SENTINEL                  reject SENTINEL (it took one word, no more)
                                    OPT=VALUE SENTINEL / -xVALUE ...    reject SENTINEL (attached form, one word)

A flag that makes the program stop at once (`--help`, `--version`) passes when the output is the
same with and without the sentinel: nothing after it is read.

Where: the programs of the sandbox image `safeagent/sandbox:dev` (one `docker run --rm --network none`
runs the whole probe, tests/support/arity_probe.py, over every option); the image's tools must have the
pinned versions (`PINNED_VERSIONS`, Debian bookworm). A tool the image lacks (an image built before
the tool was added) and every tool when Docker or the image is absent are probed on this machine,
but only where its version equals the pin; the others are skipped with a printed reason. Set
SAFEAGENT_ARITY_PROBE=image to fail instead of falling back (meant for CI, after `make images`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.support.paths import CONFIGS, REPO
from safeagent.policy import load_policy

IMAGE = os.environ.get("SAFEAGENT_SANDBOX_IMAGE", "safeagent/sandbox:dev")
PROBE_SCRIPT = REPO / "tests" / "support" / "arity_probe.py"
SENTINEL = "--zz-arity-probe"
LETTER = "%"  # an option letter no program has

#: The first line of each tool's --version in the sandbox image (Debian bookworm), as a prefix.
PINNED_VERSIONS = {
    "git": "git version 2.39.",
    "coreutils": "ls (GNU coreutils) 9.1",
    "grep": "grep (GNU grep) 3.8",
    "findutils": "find (GNU findutils) 4.9.0",
    "diffutils": "diff (GNU diffutils) 3.8",
    "sed": "sed (GNU sed) 4.9",
    "file": "file-5.44",
    "tree": "tree v2.1.0",
    "ripgrep": "ripgrep 13.0.0",
    "make": "GNU Make 4.3",
    "pytest": "pytest 7.2.",
}

#: program -> the tool (package) it comes from
TOOL_OF = {
    "git": "git", "grep": "grep", "find": "findutils", "diff": "diffutils", "sed": "sed", "file": "file",
    "tree": "tree", "rg": "ripgrep", "make": "make", "pytest": "pytest",
}

#: Words that put the program where its options are read (find's starting point; a commit for the
#: git commands that print their usage, as for an unknown option, when given none).
BASE_WORDS = {"find": ["."], "git rev-list": ["HEAD"], "git diff-tree": ["HEAD"]}

#: A valid value per kind, and per option where the kind's default would be refused by the program
#: before it reads the next word.
KIND_VALUES = {"text": "x", "regex": "x", "revision": "HEAD", "date": "2024-01-01", "pretty-format": "%h",
               "atom-format": "%(refname)", "directive-format": "x", "path": "a", "destination": ".", "nodeid": "a", "number": "1", "sed-script": "p", "printf-format": "x"}
OPTION_VALUES = {
    ("ls", "--block-size"): "1K",
    ("ls", "--time-style"): "iso",
    ("du", "--time-style"): "iso",
    ("du", "-B"): "1K",
    ("du", "--block-size"): "1K",
    ("git", "-M"): "50",
    ("git", "--find-renames"): "50",
    ("git", "-C"): "50",
    ("git", "--find-copies"): "50",
    ("git", "-B"): "50",
    ("git", "--break-rewrites"): "50",
    ("git", "-X"): "lines",
    ("git ls-files", "-X"): "a",
    ("git", "--dirstat"): "lines",
    ("git", "--dirstat-by-file"): "lines",
    ("git", "--stat"): "80",
    ("git", "--color-moved-ws"): "ignore-space-change",
    ("git", "--ws-error-highlight"): "new",
    ("git", "--find-object"): "HEAD",
    ("git", "--column"): "never",
    ("git log", "--format"): "%h",
    ("git show", "--format"): "%h",
    ("git", "--pretty"): "oneline",
    ("git rev-parse", "--short"): "7",
    ("git shortlog", "--group"): "author",
    ("git shortlog", "-w"): "80",
    ("find", "-type"): "f",
    ("find", "-xtype"): "f",
    ("find", "-perm"): "644",
    ("find", "-user"): "0",
    ("find", "-group"): "0",
    ("find", "-newerat"): "2024-01-01",
    ("find", "-newermt"): "2024-01-01",
    ("find", "-newerct"): "2024-01-01",
    ("sort", "-k"): "1",
    ("sort", "--key"): "1",
    ("sort", "-t"): ":",
    ("sort", "--field-separator"): ":",
    ("cut", "-d"): ":",
    ("cut", "--delimiter"): ":",
    ("git log", "-L"): "1,1:a",
    ("git show", "-L"): "1,1:a",
    ("git log", "--date"): "iso",
    ("git show", "--date"): "iso",
    ("git log", "--encoding"): "UTF-8",
    ("git show", "--encoding"): "UTF-8",
    ("git blame", "-L"): "1,1",
    ("git blame", "--date"): "iso",
    ("git ls-files", "--with-tree"): "HEAD",
    ("git branch", "--contains"): "HEAD",
    ("git branch", "--no-contains"): "HEAD",
    ("git branch", "--merged"): "HEAD",
    ("git branch", "--no-merged"): "HEAD",
    ("git branch", "--points-at"): "HEAD",
    ("git tag", "--contains"): "HEAD",
    ("git tag", "--no-contains"): "HEAD",
    ("git tag", "--merged"): "HEAD",
    ("git tag", "--no-merged"): "HEAD",
    ("git tag", "--points-at"): "HEAD",
    ("git branch", "--sort"): "refname",
    ("git tag", "--sort"): "refname",
    ("git branch", "--format"): "%(refname)",
    ("git tag", "--format"): "%(refname)",
    ("git rev-parse", "--default"): "HEAD",
    ("git grep", "--max-depth"): "1",
    ("rg", "-t"): "py",
    ("rg", "--type"): "py",
    ("rg", "-T"): "py",
    ("rg", "--type-not"): "py",
    ("rg", "--type-add"): "foo:*.foo",
    ("rg", "-E"): "utf-8",
    ("rg", "--encoding"): "utf-8",
    ("rg", "-M"): "10",
    ("rg", "--max-filesize"): "1K",
    ("rg", "--colors"): "path:fg:red",
    ("tree", "--charset"): "utf8",
    ("tree", "--timefmt"): "%Y",
    ("file", "-e"): "ascii",
    ("file", "--exclude"): "ascii",
    ("file", "--exclude-quiet"): "ascii",
    ("file", "-P"): "bytes=1",
    ("file", "--parameter"): "bytes=1",
    ("nl", "-b"): "a",
    ("nl", "--body-numbering"): "a",
    ("nl", "-h"): "n",
    ("nl", "--header-numbering"): "n",
    ("nl", "-f"): "n",
    ("nl", "--footer-numbering"): "n",
    ("nl", "-d"): "xy",
    ("nl", "--section-delimiter"): "xy",
    ("pytest", "-r"): "a",
    ("pytest", "--confcutdir"): ".",
    ("pytest", "--rootdir"): ".",
    ("pytest", "--durations-min"): "1",
    ("pytest", "--log-level"): "INFO",
    ("pytest", "--log-cli-level"): "INFO",
    ("git for-each-ref", "--format"): "%(refname)",
    ("git for-each-ref", "--sort"): "refname",
    ("git for-each-ref", "--points-at"): "HEAD",
    ("git for-each-ref", "--contains"): "HEAD",
    ("git for-each-ref", "--no-contains"): "HEAD",
    ("git for-each-ref", "--merged"): "HEAD",
    ("git for-each-ref", "--no-merged"): "HEAD",
    ("git diff-tree", "--format"): "%h",
    ("git ls-files", "--format"): "%(path)",
    ("git ls-tree", "--format"): "%(path)",
    ("od", "-t"): "x1",
    ("od", "--format"): "x1",
}
# the commands that take git log's options take its values too
for _label in ("git reflog", "git reflog show", "git stash list", "git rev-list"):
    OPTION_VALUES.update({(_label, name): value for (command, name), value in list(OPTION_VALUES.items())
                          if command == "git log"})


def _unknown_patterns(token: str) -> list[str]:
    """How the programs say they do not know a whole word `token`."""
    t = re.escape(token)
    bare = re.escape(token.lstrip("-"))
    return [
        rf"unrecognized option '{t}'",  # GNU getopt_long
        rf"unknown option `{bare}'",  # git parse-options
        rf"unknown option `{t}'",  # git blame, shortlog
        rf"unrecognized argument: {t}",  # git log/show (revision options)
        rf"invalid option: {t}",  # git diff
        rf"unknown option: {t}",  # git's global options
        rf"unknown predicate `{t}'",  # find
        rf"Found argument '{t}' which wasn't expected",  # ripgrep (clap)
        rf"Invalid argument `{t}'",  # tree
        rf"unrecognized arguments: (.* )?{t}",  # pytest (argparse)
        r"^usage: git diff ",  # git diff --cached (diff-index) answers any unknown option with its usage
        r"^usage: git rev-list ",  # so do git rev-list and git diff-tree
        r"^usage: git diff-tree ",
    ]


def _letter_patterns(word: str) -> list[str]:
    """How the programs say they do not know the letter % in `word` (-x%), or the whole word."""
    w = re.escape(word)
    return [
        r"invalid option -- '%'",  # GNU getopt
        r"unknown switch `%'",  # git parse-options
        r"unknown option `-%'",  # git blame, shortlog
        r"Invalid argument -`%'",  # tree
        r"Found argument '-%'",  # ripgrep
        r"ignored explicit argument '%'",  # pytest
        rf"unrecognized argument: {w}",  # git log/show read -x% as one unknown word
        rf"invalid option: {w}",
        rf"unknown option: {w}",
        r"^usage: git (rev-list|diff-tree) ",  # they answer an unknown word with their usage
    ]


#: Programs that print an unknown word instead of refusing it (echo prints it; git rev-parse passes
#: unknown options through): for them, "the word was not taken" means it appears as a line of output.
ECHOES = {"echo", "git rev-parse"}

#: ripgrep (clap) refuses a value that starts with '-' (it exits with an error), so the sentinel never
#: shows that an option takes a value. Instead: `rg OPT VALUE` with no other word leaves ripgrep
#: without a pattern only if OPT took VALUE.
REFUSES_DASH_VALUES = {"rg": r"required arguments were not provided:\s*<PATTERN>"}


@dataclass(frozen=True)
class Probe:
    label: str  # "git log: -S takes the next word"
    command: str  # "git log"
    argv: tuple[str, ...]
    expect: str  # "rejects" | "takes" | "rejects-letter"
    token: str
    baseline: tuple[str, ...] | None = None  # for flags: the same argv without the sentinel


def _value(command_label: str, program: str, option, name: str) -> str:
    for key in ((command_label, name), (command_label, option.canonical), (program, name)):
        if key in OPTION_VALUES:
            return OPTION_VALUES[key]
    if option.arg == "choice":
        return sorted(option.choices)[0]
    if program == "find" and option.arg == "text":
        return "1"  # find's text arguments are names, patterns, sizes, times: 1 suits them all
    return KIND_VALUES[option.arg]


def _command_probes(label: str, prefix: list[str], program: str, command) -> list[Probe]:
    probes: list[Probe] = []
    base = BASE_WORDS.get(label, BASE_WORDS.get(program, []))  # git rev-list needs a commit first
    tables = [(name, option) for name, option in command.long.items()]
    tables += [(f"-{letter}", option) for letter, option in command.short.items()]
    tables += list(command.predicates.items())
    for name, option in sorted(tables, key=lambda item: item[0]):
        if option.denied:
            continue
        head = [*prefix, *base]
        is_short = len(name) == 2 and name[1] != "-" and name not in command.predicates
        if option.arg is None:
            probes.append(Probe(f"{label}: {name} takes no value", label, (*head, name, SENTINEL), "rejects", SENTINEL, (*head, name)))
            if is_short and program != "find":
                probes.append(Probe(f"{label}: {name} takes no attached value", label, (*head, name + LETTER), "rejects-letter", name + LETTER, (*head, name)))
            continue
        value = _value(label, program, option, name)
        attached = f"{name}{value}" if is_short else f"{name}={value}"
        if option.optional:
            probes.append(Probe(f"{label}: {name} never takes the next word", label, (*head, name, SENTINEL), "rejects", SENTINEL, (*head, name)))
            probes.append(Probe(f"{label}: {name} takes an attached value ({attached})", label, (*head, attached, SENTINEL), "rejects", SENTINEL))
            continue
        if program in REFUSES_DASH_VALUES and name not in ("-e", "--regexp"):
            probes.append(Probe(f"{label}: {name} takes the next word", label, (*head, name, value), "takes-value", value))
        else:
            probes.append(Probe(f"{label}: {name} takes the next word", label, (*head, name, SENTINEL), "takes", SENTINEL))
        probes.append(Probe(f"{label}: {name} takes one word, no more", label, (*head, name, value, SENTINEL), "rejects", SENTINEL))
        if name in command.predicates or (is_short and command.short_values == "next_word"):
            continue
        probes.append(Probe(f"{label}: {name} takes an attached value ({attached})", label, (*head, attached, SENTINEL), "rejects", SENTINEL))
    return probes


def all_probes() -> list[Probe]:
    programs = {}
    for path in (CONFIGS / "policy.yaml", CONFIGS / "policy.execution.yaml"):
        programs.update(load_policy(path)._compiled.programs)
    def walk(label: str, prefix: list[str], program: str, command) -> None:
        probes.extend(_command_probes(label, prefix, program, command))
        for sub_name, sub in sorted(command.subcommands.items()):  # git stash list, git remote get-url
            walk(f"{label} {sub_name}", [*prefix, sub_name], program, sub)

    probes: list[Probe] = []
    for program, command in sorted(programs.items()):
        walk(program, [program], program, command)
    return probes


def judge(probe: Probe, output: str, baseline: str | None) -> bool:
    if probe.expect == "takes-value":
        return bool(re.search(REFUSES_DASH_VALUES[probe.command.split()[0]], output))
    if probe.command in ECHOES:
        # printed back (also shell-quoted by --sq), or refused as no revision once --verify/--short is on
        token = re.escape(probe.token)
        rejected = bool(re.search(rf"(^|\n)'?{token}'?( |$|\n)|Needed a single revision", output))
    elif probe.expect == "rejects-letter":
        rejected = any(re.search(pattern, output) for pattern in _letter_patterns(probe.token))
    else:
        rejected = any(re.search(pattern, output) for pattern in _unknown_patterns(probe.token))
    if probe.expect == "takes":
        return not rejected
    if rejected:
        return True
    # a flag that stops the program at once (--help, --version): nothing after it is read
    return baseline is not None and output == baseline and probe.token not in output


def _tool(program: str) -> str:
    return TOOL_OF.get(program, "coreutils")


def _image_present() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "image", "inspect", IMAGE], capture_output=True, timeout=60).returncode == 0


def _run_probe(argvs: list[list[str]], where: str) -> dict:
    request = json.dumps({"argvs": argvs, "workers": 4})
    if where == "image":
        docker = shutil.which("docker")
        bootstrap = (
            "import io, json, sys; document = json.loads(sys.stdin.read()); "
            "sys.stdin = io.StringIO(document['request']); "
            "exec(compile(document['script'], 'arity_probe.py', 'exec'), {'__name__': '__main__'})"
        )
        payload = json.dumps({"script": PROBE_SCRIPT.read_text(), "request": request})
        result = subprocess.run(
            [docker, "run", "--rm", "-i", "--network", "none", IMAGE, "python3", "-c", bootstrap],
            input=payload, capture_output=True, text=True, timeout=900,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)
    result = subprocess.run(
        [sys.executable, str(PROBE_SCRIPT)], input=request, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _matching(versions: dict) -> set[str]:
    return {tool for tool, pin in PINNED_VERSIONS.items() if versions.get(tool, "").startswith(pin)}


@pytest.fixture(scope="module")
def probe_results():
    probes = all_probes()
    argvs, index = [], {}
    for probe in probes:
        for argv in (probe.argv, probe.baseline):
            if argv is not None and argv not in index:
                index[argv] = len(argvs)
                argvs.append(list(argv))
    strict = os.environ.get("SAFEAGENT_ARITY_PROBE") == "image"
    source: dict[str, str] = {}  # tool -> "image" or "host"
    outputs: dict[tuple, dict] = {}
    if _image_present():
        report = _run_probe(argvs, "image")
        versions = report["versions"]
        absent = {tool for tool, line in versions.items() if line.startswith("probe: program not found")}
        wrong = {tool: versions[tool] for tool in set(PINNED_VERSIONS) - _matching(versions) - absent}
        assert not wrong, f"the image's tools are not the pinned versions: {wrong}"
        assert not (strict and absent), f"the image {IMAGE} lacks {sorted(absent)}: rebuild it (make images)"
        source.update({tool: "image" for tool in _matching(versions)})
        outputs["image"] = report
        if absent:
            print(f"arity probe: the image {IMAGE} lacks {sorted(absent)} (built before they were added?); "
                  "those are probed on this machine if its versions match")
    elif strict:
        pytest.fail(f"SAFEAGENT_ARITY_PROBE=image but the image {IMAGE} is not available")
    if set(PINNED_VERSIONS) - set(source):
        report = _run_probe(argvs, "host")
        host_matching = _matching(report["versions"]) - set(source)
        source.update({tool: "host" for tool in host_matching})
        outputs["host"] = report
        skipped = sorted(set(PINNED_VERSIONS) - set(source))
        print(f"arity probe: probed on this machine: {sorted(host_matching)}; skipped (no image, and this "
              f"machine's version differs or is missing): {[(tool, report['versions'].get(tool)) for tool in skipped]}")
    results = {
        where: {argv: report["results"][position] for argv, position in index.items()} for where, report in outputs.items()
    }
    return source, probes, results


def _commands() -> list[str]:
    return sorted({probe.command for probe in all_probes()})


@pytest.mark.parametrize("command", _commands())
def test_option_arity_matches_the_real_program(probe_results, command):
    source, probes, results = probe_results
    tool = _tool(command.split()[0])
    if tool not in source:
        pytest.skip(f"{tool}: not in the sandbox image, and this machine's version is not the pinned one")
    where = source[tool]
    outputs = results[where]
    wrong = []
    for probe in (probe for probe in probes if probe.command == command):
        result = outputs[probe.argv]
        baseline = outputs[probe.baseline]["out"] if probe.baseline else None
        if result["rc"] in (127, -1):
            wrong.append(f"{probe.label}: {' '.join(probe.argv)} -> {result['out']}")
        elif not judge(probe, result["out"], baseline):
            wrong.append(f"{probe.label}: NOT SO. {' '.join(probe.argv)} -> {result['out'][:300]!r}")
    assert not wrong, f"{len(wrong)} options disagree with the {where} binaries:\n" + "\n".join(wrong)
