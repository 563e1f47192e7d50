"""The API tier's scene: one real kube-apiserver per session, one fresh sandbox namespace per test.

See tests/api/server.py for the server and tests/api/world.py for what a test is given.
"""

from __future__ import annotations

import pytest

from tests.api import world as world_module
from tests.api.server import running
from tests.api.stage import Stage


@pytest.fixture(scope="session")
def stage(tmp_path_factory):
    """The server with the CRDs, the chart's RBAC, admission policies and configuration installed."""
    with running() as server:
        yield Stage.install(server, tmp_path_factory.mktemp("stage"))


@pytest.fixture
def namespace(stage):
    """A sandbox namespace of its own, made as the chart makes one, with the jobs' sources in it."""
    return stage.new_namespace()


@pytest.fixture
def world(stage, namespace):
    """The reconcile core, wired as the operator wires it, over the real server (see world.World)."""
    return world_module.World(stage, namespace)
