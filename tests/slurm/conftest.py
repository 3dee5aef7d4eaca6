"""The ``slurm_cluster`` fixture: a real one-node Slurm cluster for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.slurm.cluster import INSTALL_HINT, Cluster, missing_tools, start_cluster


def pytest_configure(config: pytest.Config) -> None:
    # also in pytest.ini; registered here too so that these tests run under --strict-markers on their own
    config.addinivalue_line(
        "markers",
        "slurm: runs jobs on a real one-node Slurm cluster that the tests start (needs root and .ci/install-slurm.sh)",
    )


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running one-node cluster; its ``SLURM_CONF`` is exported for the session, so ``sbatch``, ``squeue``
    and the executor (and the workers it starts, which inherit the environment) talk to it."""
    missing = missing_tools()
    if missing:
        message = f"{INSTALL_HINT} Missing: {', '.join(missing)}."
        if os.environ.get("CELLSEG_REQUIRE_SLURM"):  # CI installs them: a skip there would hide a failure
            pytest.fail(message)
        pytest.skip(message)
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except PermissionError as exc:
        pytest.skip(str(exc))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in cluster.env.items():
                patch.setenv(key, value)
            # Stop's final scancel comes 10 s after the graceful one (not 30): fewer waiting shells at the end
            patch.setenv("CELLSEG_SLURM_GRACE_S", "10")
            yield cluster
    finally:
        cluster.stop()
