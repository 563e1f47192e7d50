"""Command policy: what an agent's command line may do (allow, deny, or require approval).

    from safeagent.policy import load_policy, decide
    policy = load_policy("configs/policy.yaml")
    decide(policy, "git diff --stat").to_dict()

Pure Python, no I/O besides reading the policy file. See configs/README.md for keys and reason codes.
"""

from .decision import ALLOW, DENY, REASONS, REQUIRE_APPROVAL, Decision
from .engine import decide
from .errors import PolicyError
from .loader import load_policy, load_policy_files, parse_policy
from .model import Policy

__all__ = [
    "ALLOW",
    "DENY",
    "REASONS",
    "REQUIRE_APPROVAL",
    "Decision",
    "Policy",
    "PolicyError",
    "decide",
    "load_policy",
    "load_policy_files",
    "parse_policy",
]
