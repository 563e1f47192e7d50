"""Tests of safeagent.policy: the attack tables, the properties, the policy files and option arity."""
