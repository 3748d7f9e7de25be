"""Bootstrap of one local Lambda execution environment: what Lambda's Python runtime does at start.

Run as ``python -S bootstrap.py``: no site-packages. It puts the function's code, its layers and the
runtime's own packages (boto3, awslambdaric) on ``sys.path`` in Lambda's order, then hands over to
the AWS Lambda runtime interface client (``awslambdaric``), which imports the handler, reports init
errors and serves invocations through the Runtime API the data plane serves at
``AWS_LAMBDA_RUNTIME_API``, as on Lambda.

A SnapStart snapshot (``_LOCAL_LAMBDA_SNAPSHOT=1``) differs in one place, ``restore/next``: after init
and the before-snapshot hooks, Lambda takes a microVM snapshot and every cold start resumes it.
Locally every cold start is a ``fork()`` of the snapshot process, asked for through ``restore/next``:
the child gets its own Runtime API address and log socket and returns into awslambdaric, which runs
the after-restore hooks and serves. awslambdaric's C client reads ``AWS_LAMBDA_RUNTIME_API`` once,
when it is loaded, so in a snapshot it is loaded in each restored child, not before the fork.
fork() keeps only the calling thread, so threads started during init are not restored.
"""

from __future__ import annotations

import os
import sys


def _set_path() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == here:
        sys.path.pop(0)  # this bootstrap's folder is not part of the function
    for path in reversed(os.environ.pop("_LOCAL_LAMBDA_PATH").split(os.pathsep)):
        sys.path.insert(0, path)


def _load_runtime_client_after_fork() -> None:
    """Stand in for awslambdaric's C client until the first real call, then load it."""
    import importlib
    import types

    recorded: list[tuple] = []

    class LazyRuntimeClient(types.ModuleType):
        def initialize_client(self, *args: object) -> None:
            recorded.append(args)

        def __getattr__(self, name: str) -> object:
            # Only the client's own calls load it: code that walks sys.modules looking up other names
            # (pickle.whichmodule, inspect) must not load it in the snapshot.
            if name not in ("next", "post_invocation_result", "post_error"):
                raise AttributeError(name)
            del sys.modules["runtime_client"]
            real = importlib.import_module("runtime_client")
            for args in recorded:
                real.initialize_client(*args)
            sys.modules["awslambdaric.lambda_runtime_client"].runtime_client = real
            return getattr(real, name)

    sys.modules["runtime_client"] = LazyRuntimeClient("runtime_client")


def _fork_on_restore() -> None:
    """``restore/next`` in a snapshot: fork one restored environment per request, until stopped."""
    import http.client
    import signal
    import socket

    from awslambdaric import lambda_runtime_client

    api = "/2018-06-01/runtime/restore/next"

    def restore_next(client: lambda_runtime_client.LambdaRuntimeClient) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored environments are reaped by the kernel
        headers: dict[str, str] = {}
        while True:
            connection = http.client.HTTPConnection(client.lambda_runtime_address)
            connection.request("GET", api, headers=headers)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            if response.status != 200:
                raise lambda_runtime_client.LambdaRuntimeClientError(api, response.status, body)
            runtime_api = response.headers["Local-Restore-Runtime-Api"]
            log_host, _, log_port = response.headers["Local-Restore-Log"].rpartition(":")
            restore_id = response.headers["Local-Restore-Id"]
            pid = os.fork()
            if pid == 0:  # the restored environment
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                log = socket.create_connection((log_host, int(log_port)))
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                log.close()
                os.environ["AWS_LAMBDA_RUNTIME_API"] = runtime_api
                client.lambda_runtime_address = runtime_api
                return  # back in awslambdaric: after-restore hooks, then invocations
            headers = {"Local-Restored-Pid": str(pid), "Local-Restore-Id": restore_id}

    lambda_runtime_client.LambdaRuntimeClient.restore_next = restore_next


def main() -> None:
    _set_path()
    if os.environ.pop("_LOCAL_LAMBDA_SNAPSHOT", "") == "1":
        _load_runtime_client_after_fork()
        _fork_on_restore()
    from awslambdaric.__main__ import main as run

    run(["awslambdaric", os.environ["_HANDLER"]])


if __name__ == "__main__":
    main()
