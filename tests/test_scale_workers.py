"""A cluster job whose workers run out of memory stops with one line naming the scheduler and
the way forward, instead of waiting for ever (every worker paused by Dask above 80% of its
memory limit) or ending in "unexpected error: KilledWorker ... please report it" (a task
whose worker the nanny restarted at 95%). A real LocalCluster of worker processes on
127.0.0.1, tasks that really hold memory."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("distributed")

from dlsuite.errors import DlsuiteInputError  # noqa: E402

LIMIT = 800 * 2**20  # each worker's memory limit
TIMEOUT = 240  # seconds any distributed step may take on a loaded 2-core machine


def _cluster(**config):
    import dask
    from distributed import LocalCluster

    with dask.config.set(config):
        return LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                            scheduler_port=0, dashboard_address=None, memory_limit=LIMIT,
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def _holding(fraction: float, seconds: float):
    """A task that brings its worker process to ``fraction`` of LIMIT and stays there."""
    def hold():
        import os

        import numpy as np

        with open("/proc/self/statm") as fh:  # resident pages of this worker process
            resident = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        need = int(fraction * LIMIT - resident)
        block = np.ones(max(need, 0) // 8)  # written: resident, not only reserved
        time.sleep(seconds)
        return block.size
    return hold


@pytest.mark.slow
def test_a_job_whose_workers_stay_paused_stops_naming_memory(monkeypatch):
    from distributed import Client

    from dlsuite.scale.cluster import completed

    monkeypatch.setenv("DLSUITE_SCHEDULER_TIMEOUT", "3")
    with _cluster() as local, Client(local) as client:
        held = client.submit(_holding(0.87, 600), pure=False)  # above 80%: paused, not ended
        start = time.monotonic()
        with pytest.raises(DlsuiteInputError) as caught:
            for _ in completed(client, [held], timeout=TIMEOUT):
                pass
        assert time.monotonic() - start < 120
        statuses = [w["status"] for w in client.scheduler_info()["workers"].values()]
    assert statuses == ["paused"]
    assert str(caught.value).startswith(
        f"--scheduler {local.scheduler_address}: every worker has been paused by Dask for want "
        "of memory (above 80% of its memory limit) for 3 s (DLSUITE_SCHEDULER_TIMEOUT), 1 "
        "task(s) not done; give the workers more memory (dask worker "
        f"{local.scheduler_address} --memory-limit 8GiB) or predict block by block")


@pytest.mark.slow
def test_a_task_that_kills_its_workers_stops_naming_memory():
    from distributed import Client

    from dlsuite.scale.cluster import completed

    with _cluster(**{"distributed.scheduler.allowed-failures": 0}) as local, \
            Client(local) as client:
        fine = client.submit(time.sleep, 0, pure=False)
        seen = [f for f in completed(client, [fine], timeout=TIMEOUT)]
        assert seen == [fine]  # a task that ends well is yielded as before
        hog = client.submit(_holding(1.5, 60), pure=False, key="dlsuite-predict-1-big")
        with pytest.raises(DlsuiteInputError) as caught:
            for _ in completed(client, [hog], timeout=TIMEOUT):
                pass
    assert str(caught.value).startswith(
        f"--scheduler {local.scheduler_address}: task 'dlsuite-predict-1-big' ended every "
        "worker that ran it (Dask restarts a worker that goes over 95% of its memory limit")
    assert "--block-size 1024" in str(caught.value)
