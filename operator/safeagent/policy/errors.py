"""Exceptions of the policy package."""


class PolicyError(Exception):
    """A policy file cannot be used; the message names the file and the field path."""


class Refusal(Exception):
    """Raised inside the decision chain: the command is denied with a reason code and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
