"""One table row per attack (and per ordinary command that must keep working).

The rows are data, grouped by what an attack uses (tests/support/policy_cases/); each names the policy,
the command line and the decision + reason code that policy must give.
"""

import pytest

from safeagent.policy import decide
from tests.support.policy_cases import CASES, EXECUTION_COMMANDS, INSPECT


def case_id(case):
    return f"{case.group}:{case.policy[0]}:{case.command[:60]!r}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_policy_decides_the_case(inspect_policy, execution_policy, case):
    policy = inspect_policy if case.policy == INSPECT else execution_policy
    result = decide(policy, case.command)
    assert (result.decision, result.reason) == (case.decision, case.reason), result.message


SHARED = [case for case in CASES if case.policy == INSPECT and case.command not in EXECUTION_COMMANDS]


@pytest.mark.parametrize("case", SHARED, ids=case_id)
def test_the_execution_policy_decides_an_inspect_only_case_the_same(execution_policy, case):
    """The execution policy only adds programs (pytest, `python3 -m pytest`, `make test`): it shares every
    inspect-only rule, so it decides those rows the same way, unless an execution row says otherwise."""
    result = decide(execution_policy, case.command)
    assert (result.decision, result.reason) == (case.decision, case.reason), result.message
