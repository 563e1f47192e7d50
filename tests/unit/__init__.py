"""Unit tests, laid out like operator/safeagent/: policy/, sandbox/, reconcile/, a test_<module>.py
per top-level module, and chart/ for the chart, the manifests and the CRD files."""
