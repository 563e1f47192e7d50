"""Tests of safeagent.reconcile: one file per step (pure functions; the API-facing scenarios live elsewhere)."""
