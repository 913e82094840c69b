r"""Independent tasks (pseudo-experiments, limits at many masses) on Dask distributed: a
local cluster of single-threaded worker processes, or any scheduler by its address."""

from __future__ import annotations

__all__ = ["SCHEDULER_TIMEOUT", "dask_client", "map_tasks"]

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from tqdm.auto import tqdm

from .exceptions import InputError, first_line

if TYPE_CHECKING:
    from distributed import Client

SCHEDULER_TIMEOUT = 10.0  # seconds to wait for a Dask scheduler to answer
T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def dask_client(
    jobs: int | None = None, scheduler: str | None = None, timeout: float | None = None
) -> Iterator[Client | None]:
    r"""A Dask client for the tasks of one command, closed on exit.

    Arguments:
        jobs: Worker processes of a local cluster, each with one thread (torch is told
            to use one thread there too); all cores if `None`. With `jobs=1` the tasks
            run here, in turn, and the client is `None` (no cluster to start).
        scheduler: Address of a running scheduler, e.g. `tcp://10.0.0.1:8786`, whose
            workers get the tasks instead (`jobs` is then ignored); one that does not
            answer within `timeout` seconds (default `SCHEDULER_TIMEOUT`) raises
            `InputError`.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        timeout = SCHEDULER_TIMEOUT if timeout is None else timeout
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s "
                f"({type(e).__name__}: {first_line(e)}): start it (`dask scheduler`), check "
                "the address, or leave out --scheduler to run on this machine"
            ) from None
        with client:
            yield client
        return
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if jobs == 1:
        yield None
        return
    # Dask's workers return freed memory to the system above 64 kB (MALLOC_TRIM_THRESHOLD_),
    # and torch frees and reallocates MB-sized buffers at every NLL: page faults tripled
    # a limit's time. glibc's own threshold (dynamic, from 128 kB) keeps them.
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    environ = {k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # its warnings on closing ("Worker process still alive ..., killing") are
            # not the user's: errors only
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_one_thread)
        yield client


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def map_tasks(
    func: Callable[[T], R],
    items: Sequence[T],
    client: Client | None = None,
    *,
    progress: bool = True,
    desc: str = "tasks",
    sizes: Sequence[int] | None = None,
    shared: Mapping[str, object] | None = None,
) -> list[R]:
    r"""`[func(item, **shared) for item in items]`, on the client's workers if given, else
    here one after the other, with a progress bar over tasks, or over `sizes[i]` units
    per task (events, say) if given. `shared` (keyword arguments every task takes, such
    as a training set) is sent to the workers once, not once per task. A task that
    fails raises its error here."""
    shared = dict(shared or {})
    sizes = [1] * len(items) if sizes is None else list(sizes)
    bar = tqdm(total=sum(sizes), desc=desc, disable=not progress, leave=False)
    if client is None:
        out = []
        for item, size in zip(items, sizes, strict=True):
            out.append(func(item, **shared))
            bar.update(size)
        bar.close()
        return out
    from distributed import as_completed

    shared = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
    futures = client.map(func, items, pure=False, **shared)
    size_of = {f.key: size for f, size in zip(futures, sizes, strict=True)}
    for future in as_completed(futures):
        bar.update(size_of[future.key])
    bar.close()
    return client.gather(futures)
