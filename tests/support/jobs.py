"""A SandboxJob and two operator configurations, shared by the builder and wire-contract tests.

The golden files under tests/unit/golden/ were rendered from these values.
"""

from __future__ import annotations

from safeagent.config import parse_config
from safeagent.models import SandboxJob

UID = "6f1c2a8e-0d7b-4a53-9a51-2f5b9e1c0a11"
# Who submitted it, as the chart's admission policy records an agent's ServiceAccount.
REQUESTER = {
    "username": "system:serviceaccount:agents:coder",
    "uid": "0b9c5c1e-7a51-4d0e-8f0e-3c1f0e2d9a77",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:agents", "system:authenticated"],
}

CONFIG = parse_config(
    {
        "sandbox": {"runtimeClassName": "gvisor"},
        "networkProfiles": {
            "git-read": {
                "egress": [{"cidr": "10.20.0.0/16", "ports": [{"port": 443}, {"port": 9418}]}],
                "allowDns": True,
            }
        },
    }
)


def job(source=None, profile="none", name="list-files"):
    return SandboxJob.model_validate(
        {
            "metadata": {"name": name, "namespace": "safeagent-sandbox", "uid": UID, "generation": 1},
            "spec": {
                "command": "ls -la",
                "source": source or {"configMap": {"name": "example-repo"}},
                "networkProfile": profile,
                "timeoutSeconds": 60,
                "requester": REQUESTER,
            },
        }
    )


# The egress pre-flight (issue 10) configured.
CHECKED = parse_config(
    {
        "networkProfiles": CONFIG.model_dump(mode="json")["networkProfiles"],
        "egressCheck": {
            "deadlineSeconds": 20,
            "canary": {"namespace": "safeagent-system", "service": "safeagent-canary",
                       "podLabels": {"app.kubernetes.io/component": "canary"}},
        },
    }
)
