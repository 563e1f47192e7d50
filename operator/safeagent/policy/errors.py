"""Exceptions of the policy package."""


class PolicyError(Exception):
    """A policy file cannot be used; the message names the file and the field path."""


class Refusal(Exception):
    """Raised inside the decision chain: the command is denied with a reason code and a message that
    names the offending word; ``instead`` says what to write instead where the reason's general advice
    (``decision.ADVICE``) would say less."""

    def __init__(self, reason: str, message: str, instead: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.instead = instead
