"""Running the API under uvicorn: worker processes, proxy headers, graceful shutdown.

Kept free of prometheus_client imports: the multiprocess directory must be in the environment
before that library is first imported, in this process and in every worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> Path:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory before any worker starts.

    Files left by an earlier run would be summed into this run's counters, so they go.
    """
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="rujukan-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def run(
    *,
    host: str,
    port: int,
    workers: int,
    proxy_headers: bool,
    forwarded_allow_ips: str,
    graceful_timeout: int,
) -> None:
    """Serve `service.asgi:app` until SIGTERM or SIGINT, then drain in-flight requests."""
    import uvicorn

    from service.config import get_settings
    from service.logs import uvicorn_log_config

    uvicorn.run(
        # An import string, so that each worker process builds its own app, engine and pool.
        "service.asgi:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        # On SIGTERM uvicorn stops accepting, lets in-flight requests finish (each action is
        # one transaction, committed before its response), and only after this many seconds
        # cancels what is left, which rolls those transactions back whole.
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
        # Uvicorn's access log prints query strings, which can hold a NIK filter;
        # the service writes its own access log without them.
        access_log=False,
        log_config=uvicorn_log_config(get_settings().log_level),
    )
