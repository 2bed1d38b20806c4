"""Launch shim for managed model servers (run as a script, never imported by relgate).

    python _launch.py [--parent PID] [--llama-no-extra-bufts] -- PROGRAM ARGS...
    python _launch.py [--parent PID] [--llama-no-extra-bufts] -- -m MODULE ARGS...

``--parent PID``: ask the kernel to SIGTERM this process when its parent dies
(``PR_SET_DEATHSIG``, Linux; it survives ``exec``), and exit at once if the parent is already
gone, so that a server never outlives the relgate process that started it.

``--llama-no-extra-bufts``: before running ``llama_cpp.server``, make llama.cpp load weights
without its extra CPU buffer types (``use_extra_bufts = false``). Those buffers route
quantized matmuls through AMX tile instructions on CPUs that advertise AMX; inside some VMs the
kernel does not enable AMX and the first completion dies with SIGILL (measured with
llama-cpp-python 0.3.36 on a Xeon VM). llama-cpp-python's server has no flag for it.

``-m MODULE`` runs the module in this interpreter (needed for the patch); a program is
``exec``-ed. Only the standard library is used before that, and this script's directory is
taken off ``sys.path`` first, so nothing here can shadow the server's own imports.
"""

from __future__ import annotations

import os
import runpy
import sys


def _set_death_signal(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    # The parent may have died between fork and prctl: then nobody would stop us.
    if os.getppid() != parent:
        sys.exit(f"relgate launch: parent {parent} is gone")


def _no_extra_bufts() -> None:
    import llama_cpp.llama_cpp as low

    default = low.llama_model_default_params

    def params():  # type: ignore[no-untyped-def]
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params


def main(argv: list[str]) -> None:
    """Parse the shim's options, then become the server."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if "--" not in argv:
        sys.exit("relgate launch: usage: _launch.py [options] -- PROGRAM ARGS...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    if not command:
        sys.exit("relgate launch: no command after --")
    patch = False
    i = 0
    while i < len(options):
        if options[i] == "--parent":
            _set_death_signal(int(options[i + 1]))
            i += 2
        elif options[i] == "--llama-no-extra-bufts":
            patch = True
            i += 1
        else:
            sys.exit(f"relgate launch: unknown option {options[i]}")
    if command[0] == "-m":
        if len(command) < 2:
            sys.exit("relgate launch: -m needs a module")
        if patch:
            _no_extra_bufts()
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        return
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
