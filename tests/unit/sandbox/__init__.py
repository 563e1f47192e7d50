"""Tests of safeagent.sandbox: the code that runs inside the sandbox Pod."""
