"""safeagent: run AI coding agents' commands in disposable, locked-down Kubernetes sandboxes."""

__version__ = "0.1.0"
