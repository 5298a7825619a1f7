"""Run a service module as a child that dies with the process that launched it (Linux).

`python -m agentloom_devkit.child <module> [args...]` asks the kernel for SIGTERM when the
launching process dies, then runs `<module>` as `python -m` would. Done here, after exec,
rather than in a `preexec_fn`: a `preexec_fn` makes subprocess fork the whole launching
process and run Python in the copy, which aborts when gRPC threads are busy in it (a test
process calling services) - "epoll_wait error: Bad file descriptor", exit -6.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "AGENTLOOM_PARENT_PID"


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    expected = os.environ.get(PARENT_PID_ENV)
    if expected and os.getppid() != int(expected):
        sys.exit("the launching process is gone")  # it died before the request took hold


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m agentloom_devkit.child <module> [args...]")
    die_with_parent()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
