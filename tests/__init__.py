"""The project's tests. A package so that test modules in different folders may share a basename
(tests/unit/reconcile/test_status.py and the like); tests/e2e/ and tests/oracle/ stay plain folders
whose modules import their sibling helpers by name."""
