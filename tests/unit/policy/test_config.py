"""Policy files: both shipped configs load; bad files are refused with the field path; docs match code."""

import re
from pathlib import Path
import shutil
import subprocess

import pytest

from tests.support.paths import CONFIGS, REPO
from safeagent.policy import REASONS, PolicyError, decide, load_policy, parse_policy

MINIMAL = {
    "version": 1,
    "name": "t",
    "max_output_kb": 1,
    "max_file_writes": 0,
    "programs": {"ls": {"operands": {"kind": "path"}}},
}


def with_changes(**changes):
    document = {**MINIMAL, **changes}
    return document


def test_both_configs_load(inspect_policy, execution_policy):
    assert inspect_policy.name == "inspect-only"
    assert execution_policy.name == "execution"
    assert inspect_policy.max_output_kb > 0 and inspect_policy.max_file_writes >= 0
    assert execution_policy.max_file_writes >= inspect_policy.max_file_writes


@pytest.mark.parametrize(
    ("command", "inspect", "execution"),
    [
        ("ls", "allow", "allow"),
        ("rm delete-me.txt", "require_approval", "require_approval"),
        ("git diff --no-index a b", "deny", "deny"),
        ("pytest", "deny", "allow"),
        ("python3 -m pytest", "deny", "allow"),
        ("make test", "deny", "allow"),
    ],
)
def test_done_when_examples(inspect_policy, execution_policy, command, inspect, execution):
    assert decide(inspect_policy, command).decision == inspect
    assert decide(execution_policy, command).decision == execution


def test_execution_policy_shares_every_inspect_rule(inspect_policy, execution_policy):
    """policy.execution.yaml repeats policy.yaml's programs; this keeps the two from drifting apart."""
    for name, rule in inspect_policy.programs.items():
        assert execution_policy.programs[name] == rule, name
    assert execution_policy.option_sets == inspect_policy.option_sets
    assert execution_policy.paths == inspect_policy.paths
    assert execution_policy.limits == inspect_policy.limits
    assert execution_policy.characters == inspect_policy.characters
    assert execution_policy.require_approval == inspect_policy.require_approval
    assert set(execution_policy.programs) - set(inspect_policy.programs) == {"pytest", "make"}


def test_every_reason_code_is_documented():
    readme = (CONFIGS / "README.md").read_text()
    missing = [code for code in REASONS if f"`{code}`" not in readme]
    assert not missing, f"configs/README.md does not document {missing}"


def test_every_policy_key_is_documented():
    readme = (CONFIGS / "README.md").read_text()
    from safeagent.policy import model

    keys = set()
    for cls in (model.Policy, model.ProgramRule, model.OptionRule, model.OperandRule, model.Limits, model.Paths,
                model.Characters, model.ApprovalRule, model.DeniedOption, model.OptionSet):
        keys.update(cls.model_fields)
    missing = sorted(key for key in keys if f"`{key}`" not in readme)
    assert not missing, f"configs/README.md does not document {missing}"


BAD_DOCUMENTS = [
    (with_changes(version=2), "version"),
    (with_changes(colour="x"), "colour"),
    (with_changes(max_output_kb=0), "max_output_kb"),
    (with_changes(max_output_kb="1"), "max_output_kb"),
    (with_changes(max_file_writes=-1), "max_file_writes"),
    (with_changes(programs={}), "programs"),
    (with_changes(programs={"ls": {"optionz": []}}), "programs.ls.optionz"),
    (with_changes(programs={"ls": {"options": [{"names": ["-a"], "arg": "file"}]}}), "programs.ls.options[0].arg"),
    (with_changes(programs={"ls": {"options": [{"names": ["--color"], "arg": "choice", "choices": [False]}]}}), "programs.ls.options[0].choices[0]"),
    (with_changes(programs={"ls": {"options": [{"names": ["--sort"], "arg": "choice"}]}}), "programs.ls.options[0]"),
    (with_changes(programs={"ls": {"options": [{"names": ["-a"], "optional": True}]}}), "programs.ls.options[0]"),
    (with_changes(programs={"ls": {"options": [{"names": []}]}}), "programs.ls.options[0].names"),
    (with_changes(programs={"ls": {"options": [{"names": ["-all"]}]}}), "programs.ls"),
    (with_changes(programs={"ls": {"options": [{"names": ["-a"]}, {"names": ["-a"]}]}}), "programs.ls"),
    (with_changes(programs={"ls": {"deny_options": [{"names": ["-L"]}]}}), "programs.ls.deny_options[0].why"),
    (with_changes(programs={"ls": {"operands": {"kind": "path", "min": 3, "max": 1}}}), "programs.ls.operands"),
    (with_changes(programs={"ls": {"option_sets": ["nope"]}}), "programs.ls.option_sets"),
    (with_changes(programs={"ls": {"predicates": [{"names": ["-name"]}]}}), "programs.ls"),
    (with_changes(programs={"sh": {}}), "programs.sh"),
    (with_changes(programs={"env": {}}), "programs.env"),
    (with_changes(programs={"python3": {}}), "programs.python3"),
    (with_changes(programs={"/bin/ls": {}}), "programs./bin/ls"),
    (with_changes(programs={"pytest": {"invocations": [["sh", "pytest"]]}}), "programs.pytest.invocations"),
    (with_changes(programs={"pytest": {"invocations": [["bash", "-c", "pytest"]]}}), "programs.pytest.invocations"),
    (with_changes(programs={"git": {"permute": False, "subcommands": {}}}), "programs.git"),
    (with_changes(programs={"git": {"subcommands": {"log": {}}}}), "programs.git"),
    (with_changes(programs={"sed": {}}), "programs.sed"),
    (with_changes(programs={"sed": {"operands": {"leading_text": 1}}}), "programs.sed"),
    (with_changes(programs={"sed": {"options": [{"names": ["-i"]}], "operands": {"leading_text": 1, "leading_kind": "sed-script"}}}), "programs.sed"),
    (with_changes(programs={"sed": {"options": [{"names": ["-f"], "arg": "path"}], "operands": {"leading_text": 1, "leading_kind": "sed-script"}}}), "programs.sed"),
    (with_changes(programs={"sed": {"options": [{"names": ["-e"], "arg": "text"}], "operands": {"leading_text": 1, "leading_kind": "sed-script"}}}), "programs.sed"),
    (with_changes(programs={"git": {"permute": False, "subcommands": {"branch": {"operands": {"only_with": ["--list"]}}}}}), "only_with"),
    (with_changes(programs={"tree": {"short_values": "rest"}}), "programs.tree.short_values"),
    (with_changes(paths={"workspace": "relative"}), "paths.workspace"),
    (with_changes(paths={"workspace": "/"}), "paths.workspace"),
    (with_changes(paths={"workspace": "/a/../b"}), "paths.workspace"),
    (with_changes(paths={"protected": ["../x"]}), "paths.protected"),
    (with_changes(limits={"max_command_bytes": 10**9}), "limits.max_command_bytes"),
    (with_changes(limits={"max_arguments": 0}), "limits.max_arguments"),
    (with_changes(characters={"allow_non_ascii": "yes"}), "characters.allow_non_ascii"),
    (with_changes(require_approval=[{"program": "rm", "message": "x y z"}]), "require_approval[0]"),
    (with_changes(require_approval=[{"program": "ls"}]), "require_approval[0].message"),
]


@pytest.mark.parametrize(("document", "field"), BAD_DOCUMENTS, ids=[field for _, field in BAD_DOCUMENTS])
def test_bad_policy_is_refused_with_field_path(document, field):
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, "bad.yaml")
    message = str(raised.value)
    assert message.startswith("bad.yaml: ")
    assert field in message, message


def test_minimal_policy_is_accepted():
    policy = parse_policy(MINIMAL)
    assert decide(policy, "ls x").decision == "allow"
    assert decide(policy, "ls -l").reason == "option_unknown"


def test_number_and_choice_operands_are_checked():
    """Operands of kind number, and leading operands of kind number or choice, were once passed
    unread: `seq /etc/passwd` was allowed under a rule that asks for numbers."""
    numbers = parse_policy(with_changes(programs={"seq": {"operands": {"kind": "number", "max": 3}}}))
    assert decide(numbers, "seq 1 +2 10").decision == "allow"
    for command in ("seq /etc/passwd", "seq 1 x", "seq ''"):
        assert decide(numbers, command).reason == "operand_not_allowed", command
    leading = parse_policy(with_changes(programs={"ls": {"operands": {"leading_text": 1, "leading_kind": "number"}}}))
    assert decide(leading, "ls 3 x").decision == "allow"
    assert decide(leading, "ls /etc/passwd x").reason == "operand_not_allowed"
    assert decide(leading, "ls 3 /etc/passwd").reason == "path_outside_workspace"
    choice = parse_policy(with_changes(programs={"ls": {"operands": {
        "kind": "choice", "choices": ["a", "b"], "leading_text": 1, "leading_kind": "choice"}}}))
    assert decide(choice, "ls a b").decision == "allow"
    assert decide(choice, "ls c b").reason == "operand_not_allowed"
    assert decide(choice, "ls a c").reason == "operand_not_allowed"


def test_a_leading_choice_without_choices_is_refused_at_load():
    """The choices belong to kind: choice; a leading choice under another kind would have none and
    refuse every word at run time, so the policy is refused when it is loaded."""
    with pytest.raises(PolicyError, match="leading_kind: choice"):
        parse_policy(with_changes(programs={"ls": {"operands": {"leading_text": 1, "leading_kind": "choice"}}}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nversion: 1\n", "duplicate key"),
        ("a: &x 1\nb: *x\n", "aliases are not allowed"),
        ("- just a list\n", "must be a mapping"),
        ("version: [1\n", "not valid YAML"),
        ("", "must be a mapping"),
        ("programs: !!python/object:os.system {}\n", "not valid YAML"),
        ("? [a, b]\n: 1\n", "a mapping key must be a scalar"),  # once a TypeError, not a PolicyError
        ("programs:\n  ? {ls: 1}\n  : {}\n", "a mapping key must be a scalar"),
    ],
)
def test_bad_yaml_is_refused(tmp_path, text, expected):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=expected):
        load_policy(path)


def test_missing_and_binary_files_are_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)
    huge = tmp_path / "h.yaml"
    huge.write_text("#" * (1024 * 1024 + 10))
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(huge)


def test_decide_never_raises_on_non_strings(inspect_policy):
    for value in (None, 1, b"ls", ["ls"]):
        result = decide(inspect_policy, value)
        assert (result.decision, result.reason, result.argv) == ("deny", "invalid_input", None)


def test_decision_to_dict_has_exactly_the_contract_keys(inspect_policy):
    import json

    for command in ("ls", "ls;", "rm x", "cat /etc/passwd"):
        data = decide(inspect_policy, command).to_dict()
        assert list(data) == ["decision", "argv", "reason", "message"]
        assert json.loads(json.dumps(data)) == data
        assert data["reason"] in REASONS
        assert data["message"].endswith(".")


def test_non_ascii_can_be_allowed_but_never_lookalikes():
    policy = parse_policy(with_changes(characters={"allow_non_ascii": True}))
    assert decide(policy, "ls caf\u00e9").decision == "allow"
    assert decide(policy, "ls \u65e5\u672c").decision == "allow"
    for command in ("ls \uff41", "ls p\u0430ypal", "ls \u2024\u2024", "ls x\u2215y", "ls e\u0301", "ls \u00bd"):
        assert decide(policy, command).reason == "unicode_lookalike", command
    assert decide(policy, "ls \u200b").reason == "invisible_character"


# --- deny_words: patterns a word must not match ---


def test_deny_words_pattern_must_compile():
    with pytest.raises(PolicyError, match=r"programs\.ls\.deny_words\[0\]\.pattern"):
        parse_policy(
            {
                "version": 1,
                "name": "t",
                "max_output_kb": 1,
                "max_file_writes": 0,
                "programs": {"ls": {"deny_words": [{"pattern": "(", "why": "bad"}]}},
            }
        )


def test_deny_words_applies_to_every_word_of_a_subcommand():
    policy = parse_policy(
        {
            "version": 1,
            "name": "t",
            "max_output_kb": 1,
            "max_file_writes": 0,
            "programs": {
                "git": {
                    "permute": False,
                    "subcommands": {"log": {"deny_words": [{"pattern": "^x", "why": "no x"}]}},
                }
            },
        }
    )
    assert decide(policy, "git log a b").decision == "allow"
    result = decide(policy, "git log a -- xy")
    assert (result.decision, result.reason) == ("deny", "argument_denied")
    assert "no x" in result.message


def test_new_keys_and_reason_are_documented():
    readme = (REPO / "configs" / "README.md").read_text()
    for word in ("`deny_words`", "`pattern`", "`argument_denied`"):
        assert word in readme, word


# --- the option tables against the real programs (same Debian release as the sandbox image) ---

GNU_PROGRAMS = ["ls", "cat", "head", "tail", "wc", "stat", "grep", "rm", "mv"]
GIT_SUBCOMMANDS = ["diff", "status", "ls-files", "merge-base", "show-ref", "symbolic-ref", "for-each-ref",
                   "count-objects"]


def real_long_options(argv):
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed on this machine, so its real options cannot be compared")
    output = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=20).stdout
    return set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", output))


def assert_prefixes_known(command, real):
    """No real option is a strict prefix of an option we allow unless we know it: otherwise the user
    could type that real option, which we would read as an abbreviation of ours."""
    ours = set(command.long)
    for allowed in (name for name, option in command.long.items() if not option.denied):
        for other in real:
            if other != allowed and allowed.startswith(other):
                assert other in ours, f"{other} (a real option) abbreviates our {allowed} but is not in the table"


@pytest.mark.parametrize("program", GNU_PROGRAMS)
def test_gnu_option_tables_against_real_help(inspect_policy, program):
    command = inspect_policy._compiled.programs[program]
    real = real_long_options([program, "--help"])
    assert real, f"{program} --help listed no options"
    assert_prefixes_known(command, real)
    unknown = sorted(name for name in command.long if name not in real and name not in {"--colour", "--silent", "--quiet"})
    assert not unknown, f"{program}: options not in --help (typos?): {unknown}"


@pytest.mark.parametrize("subcommand", GIT_SUBCOMMANDS)
def test_git_option_tables_against_completion_helper(inspect_policy, subcommand):
    command = inspect_policy._compiled.programs["git"].subcommands[subcommand]
    real = real_long_options(["git", subcommand, "--git-completion-helper-all"])
    if len(real) < 5:
        pytest.skip("git gave no completion list here (not inside a git work tree?)")
    assert_prefixes_known(command, real)


@pytest.mark.parametrize("program", ["du", "sort", "uniq", "diff", "od", "comm"])
def test_added_programs_match_the_real_options(inspect_policy, program):
    """Every option we list exists, and no real option is a prefix we would misread as an abbreviation."""
    command = inspect_policy._compiled.programs[program]
    real = real_long_options([program, "--help"])
    assert_prefixes_known(command, real)
    # diff's --help names --GTYPE-group-format and --LTYPE-line-format only as templates
    templated = re.compile(r"^--(old|new|unchanged|changed)-(line|group)-format$")
    unknown = sorted(name for name in command.long if name not in real and not templated.match(name))
    assert not unknown, f"{program}: options not in --help (typos?): {unknown}"


# ------------------------------------------------------- issue 11 item 5: a policy extends another


def _write(directory, name, text):
    path = directory / name
    path.write_text(text)
    return path


BASE = """version: 1
name: base
max_output_kb: 8
max_file_writes: 1
programs:
  ls: {}
require_approval: []
"""


def test_the_execution_policy_extends_the_inspect_only_one():
    from safeagent.policy import load_policy_files

    policy, sources = load_policy_files(CONFIGS / "policy.execution.yaml")
    assert [Path(s).name for s in sources] == ["policy.execution.yaml", "policy.yaml"]
    assert policy.name == "execution" and policy.max_file_writes == 512
    text = (CONFIGS / "policy.execution.yaml").read_text()
    assert "extends: policy.yaml" in text and len(text.splitlines()) < 200  # no copy of its base


def test_an_extension_adds_programs_and_replaces_named_values(tmp_path):
    from safeagent.policy import load_policy

    _write(tmp_path, "base.yaml", BASE)
    path = _write(tmp_path, "more.yaml", "extends: base.yaml\nname: more\nmax_file_writes: 5\nprograms:\n  pwd: {operands: {max: 0}}\n")
    policy = load_policy(path)
    assert (policy.name, policy.max_output_kb, policy.max_file_writes) == ("more", 8, 5)
    assert list(policy.programs) == ["ls", "pwd"]
    assert decide(policy, "pwd").decision == "allow" and decide(policy, "ls").decision == "allow"


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ("extends: base.yaml\nprograms:\n  ls: {operands: {max: 0}}\n", "programs.ls: already defined in base.yaml"),
        ("extends: base.yaml\npaths: {protected: []}\n", "cannot set 'paths'"),
        ("extends: base.yaml\nlimits: {max_arguments: 4000}\n", "cannot set 'limits'"),
        ("extends: ../base.yaml\n", "same directory"),
        ("extends: /etc/passwd\n", "same directory"),
        ("extends: missing.yaml\n", "cannot read the policy file"),
        ("extends: chained.yaml\n", "only one level"),
        ("extends: more.yaml\n", "only one level"),  # itself
    ],
)
def test_an_extension_cannot_change_its_base(tmp_path, extension, message):
    from safeagent.policy import PolicyError, load_policy

    _write(tmp_path, "base.yaml", BASE)
    _write(tmp_path, "chained.yaml", "extends: base.yaml\n")
    path = _write(tmp_path, "more.yaml", extension)
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(path)


def test_a_policy_file_follows_a_change_of_its_base(tmp_path):
    from safeagent.config import PolicyFile

    base = _write(tmp_path, "base.yaml", BASE)
    policy = PolicyFile(str(_write(tmp_path, "more.yaml", "extends: base.yaml\nname: more\n")))
    assert policy.current().max_output_kb == 8
    base.write_text(BASE.replace("max_output_kb: 8", "max_output_kb: 16"))
    assert policy.current().max_output_kb == 16


def test_every_scripted_program_has_its_script_kind_and_its_never_allowed_options():
    from safeagent.policy import model, programs

    assert set(model.SCRIPT_KINDS) == set(model.SCRIPTED_NEVER) == programs.SCRIPTED
