"""The README's Usage section is a script that works: its fenced ``bash``/``console`` blocks are
extracted and run, in order and as written, against a real server on 127.0.0.1.

The only things the test supplies are what a fresh clone after ``make dev`` has: a
``.venv/bin/relgate`` (here a shim running this tree's ``python -m relgate``), the repository's
``examples/``, and free ports (``RELGATE_GRPC_PORT`` & co., which ``relgate serve`` and the
client read, so the README can show the default ports). Blocks fenced ``sh`` are illustrations
(paths a reader fills in) and are not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUNNABLE = ("bash", "console")
# About 3 minutes on an idle 2-core machine (two gate runs embed the 7,335-row suite); a busy
# shared one has taken over 10.
TIMEOUT_S = 1500


def usage_commands(text: str) -> list[str]:
    """The commands of the README's Usage section: the lines of its ``bash`` and ``console``
    blocks (a console block's commands are its ``$ `` lines), in order."""
    match = re.search(r"^## Usage\n(.*?)(?=^## )", text, flags=re.S | re.M)
    if match is None:
        raise AssertionError("README.md has no '## Usage' section")
    commands: list[str] = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", match.group(1), flags=re.S | re.M):
        if lang not in RUNNABLE:
            continue
        for line in body.splitlines():
            if lang == "console":
                if line.startswith("$ "):
                    commands.append(line[2:])
            elif line.strip() and not line.lstrip().startswith("#"):
                commands.append(line)
    return commands


def test_usage_section_is_extracted() -> None:
    commands = usage_commands(README.read_text())
    verbs = " ".join(commands)
    # The story the README promises: serve, register, gate, roll, watch, rollback, verify.
    for verb in (
        "relgate serve",
        "relgate release register",
        "relgate gate run",
        "relgate roll start",
        "relgate roll watch",
        "relgate rollback",
        "relgate receipts verify",
    ):
        assert verb in verbs, verb
    # Illustrations (placeholder paths) are fenced `sh` and not run.
    assert not any("path/to/checkpoint" in c for c in commands)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_readme_usage_runs_verbatim(tmp_path: Path) -> None:
    commands = usage_commands(README.read_text())
    work = tmp_path / "clone"
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    shim = work / ".venv" / "bin" / "relgate"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m relgate "$@"\n')
    shim.chmod(0o755)
    grpc, gateway, web = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "python"), os.environ.get("PYTHONPATH", "")) if p
        ),
        "RELGATE_GRPC_PORT": str(grpc),
        "RELGATE_GATEWAY_PORT": str(gateway),
        "RELGATE_WEB_PORT": str(web),
        "RELGATE_SERVER": f"127.0.0.1:{grpc}",
    }
    env.pop("RELGATE_API_KEY", None)
    # Each command echoed before it runs (set -x), the first failure ends the script.
    script = "set -euo pipefail -x\n" + "\n".join(commands) + "\n"
    (work / "usage.sh").write_text(script)
    proc = subprocess.Popen(
        ["bash", "usage.sh"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the README's Usage did not finish in {TIMEOUT_S} s:\n{out[-6000:]}")
    finally:
        # The server the README starts in the background, should the script stop early.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    log = work / "relgate-serve.log"
    server_log = log.read_text()[-3000:] if log.exists() else ""
    assert proc.returncode == 0, f"{out[-8000:]}\n--- server log ---\n{server_log}"
    # The story happened: the rollback is on record and the bundle verified.
    assert "manual_rollback" in out
    assert "trust: " in out  # the verify report (the script ran it and exited 0)
