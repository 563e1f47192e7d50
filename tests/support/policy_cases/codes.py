"""The names the rows are written with: which shipped policy, and the decision it must give."""

INSPECT, EXECUTION = "inspect", "execution"  # configs/policy.yaml, configs/policy.execution.yaml
I, X = INSPECT, EXECUTION  # short, so that a row fits on one line
ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"
