"""Shared fixtures for the unit tests: the repository's two policy files, loaded once."""

import pytest

from tests.support.paths import CONFIGS


@pytest.fixture(scope="session")
def inspect_policy():
    from safeagent.policy import load_policy

    return load_policy(CONFIGS / "policy.yaml")


@pytest.fixture(scope="session")
def execution_policy():
    from safeagent.policy import load_policy

    return load_policy(CONFIGS / "policy.execution.yaml")
