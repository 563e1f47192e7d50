"""Inspection coverage: the ordinary commands a coding agent runs to read a repository are allowed.

`AGENT_COMMANDS` (tests/support/policy_cases/agent_commands.py) is our own list, written from how
coding agents work through a repository they were just handed. The share the inspect-only policy
allows is reported in the README; the test keeps it at 98% or more, while every attack row stays
refused (tests/unit/policy/test_attacks.py).
"""

from safeagent.policy import decide
from tests.support.policy_cases import AGENT_COMMANDS


#: The share of AGENT_COMMANDS the inspect-only policy must allow.
TARGET_SHARE = 0.98


def allowed_share(policy) -> tuple[float, list[str]]:
    refused = [command for command in AGENT_COMMANDS if decide(policy, command).decision != "allow"]
    return 1 - len(refused) / len(AGENT_COMMANDS), refused


def test_the_list_is_long_and_has_no_duplicates():
    assert len(AGENT_COMMANDS) >= 150
    assert len(set(AGENT_COMMANDS)) == len(AGENT_COMMANDS)


def test_ordinary_agent_commands_are_allowed(inspect_policy, execution_policy):
    for policy in (inspect_policy, execution_policy):
        share, refused = allowed_share(policy)
        print(f"{policy.name}: {share:.1%} of {len(AGENT_COMMANDS)} ordinary commands allowed; refused: {refused}")
        assert share >= TARGET_SHARE, refused


if __name__ == "__main__":  # python3 -m tests.unit.policy.test_coverage: print the share and the refusals
    import sys
    from pathlib import Path

    from safeagent.policy import load_policy

    policy = load_policy(Path(__file__).resolve().parents[3] / "configs" / "policy.yaml")
    share, refused = allowed_share(policy)
    print(f"{share:.1%} of {len(AGENT_COMMANDS)} allowed")
    for command in refused:
        print("  refused:", command, "->", decide(policy, command).reason)
    sys.exit(0)
