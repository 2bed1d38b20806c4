"""Managed engines: readiness, failure reports, stop, and no process left behind.

No real model: the engines here are fake servers (``fake_server.py``) and commands that exit
or hang. The real llama.cpp server is in ``tests/integration/engines`` (slow).
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from relgate.engines import (
    CommandEngine,
    EngineError,
    EngineResponseError,
    LlamaCppServer,
    ManagedEngine,
    chat,
    cpu_has_amx,
    resolve_model,
)
from relgate.engines.process import UVICORN_PORT
from relgate.errors import JudgeUnavailableError, NotFoundError

FAKE = str(Path(__file__).with_name("fake_server.py"))
PY = sys.executable


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_dead(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def fake(mode: str, tmp_path: Path, *, report_port: bool = True, **kw: object) -> CommandEngine:
    """A fake server engine: port 0 read back from its log, or a port chosen up front."""
    options: dict[str, object] = {
        "served_model": "m",
        "startup_timeout_s": 10.0,
        "stop_grace_s": 2.0,
        "probe_interval_s": 0.02,
        "log_path": tmp_path / f"{mode}.log",
        **kw,
    }
    port = "{port}"
    return CommandEngine(
        [PY, FAKE, mode, port, "m"],
        port_pattern=UVICORN_PORT if report_port else None,
        name="fake",
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("report_port", [True, False])
def test_serving_engine_is_ready_and_stops(tmp_path: Path, report_port: bool) -> None:
    engine = fake("serve", tmp_path, report_port=report_port)
    with engine:
        assert engine.running()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", engine.base_url)
        assert engine.port > 0
        assert engine.startup_s is not None and engine.startup_s < 10
        engine.check()
        reply = chat(engine.base_url, "m", [{"role": "user", "content": "hi"}], logprobs=True)
        assert reply.text == "yes"
        assert reply.top_logprobs == ((("yes", -0.1), ("no", -2.3)),)
        pid = engine.pid
    assert pid is not None and not alive(pid)
    assert not engine.running()
    assert engine.stop() == engine.returncode  # idempotent


def test_a_reused_log_does_not_hand_out_the_previous_servers_port(tmp_path: Path) -> None:
    log = tmp_path / "shared.log"
    with fake("serve", tmp_path, log_path=log) as first:
        first_port = first.port
    # The next server reports its port later than the probe first looks: until then the only
    # port line in the file is the previous server's, which must not be taken.
    slow = CommandEngine(
        [
            PY,
            "-c",
            "import time, runpy, sys; time.sleep(0.5); sys.argv = sys.argv[1:];"
            " runpy.run_path(sys.argv[0], run_name='__main__')",
            FAKE,
            "serve",
            "0",
            "m",
        ],
        served_model="m",
        port_pattern=UVICORN_PORT,
        log_path=log,
        probe_interval_s=0.02,
        startup_timeout_s=10.0,
    )
    with slow:
        assert slow.port != first_port
        slow.check()
    assert log.read_text().count("Uvicorn running") == 2


@pytest.mark.parametrize("report_port", [True, False])
def test_a_busy_port_is_an_error_not_someone_elses_server(
    tmp_path: Path, report_port: bool
) -> None:
    # The server already on the port lists the same model name: its answer to the readiness
    # probe must not make the new engine look ready.
    with fake("serve", tmp_path, log_path=tmp_path / "first.log") as first:
        second = fake(
            "serve",
            tmp_path,
            report_port=report_port,
            port=first.port,
            log_path=tmp_path / "second.log",
        )
        if report_port:
            with pytest.raises(EngineError, match="before it was ready"):
                second.start()
        else:
            with pytest.raises(EngineError, match=f"port {first.port} .* already in use"):
                second.start()
        assert not second.running()
        first.check()


def test_engine_that_exits_names_log_and_status(tmp_path: Path) -> None:
    engine = CommandEngine(
        [PY, "-c", "import sys; print('cannot load model.gguf: bad magic'); sys.exit(3)"],
        served_model="m",
        log_path=tmp_path / "exit.log",
        probe_interval_s=0.02,
    )
    with pytest.raises(EngineError) as info:
        engine.start()
    err = info.value
    assert isinstance(err, JudgeUnavailableError)
    assert err.returncode == 3
    assert "exited with code 3 before it was ready" in str(err)
    assert "bad magic" in str(err) and "bad magic" in err.log_tail
    assert err.log_path == tmp_path / "exit.log" and err.log_path.is_file()
    assert not engine.running()


def test_engine_killed_by_a_signal_is_named(tmp_path: Path) -> None:
    engine = CommandEngine(
        [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"],
        served_model="m",
        log_path=tmp_path / "ill.log",
        probe_interval_s=0.02,
    )
    with pytest.raises(EngineError, match=r"killed by SIGILL.*illegal instruction"):
        engine.start()


def test_engine_that_never_gets_ready_is_killed_at_the_deadline(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    engine = CommandEngine(
        [
            PY,
            "-c",
            f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid()));"
            " print('loading...', flush=True); time.sleep(600)",
        ],
        served_model="m",
        startup_timeout_s=1.0,
        stop_grace_s=1.0,
        probe_interval_s=0.02,
        log_path=tmp_path / "hang.log",
    )
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"(?s)not ready after 1 s .*loading\.\.\.") as info:
        engine.start()
    assert time.monotonic() - started < 8
    assert "Connection" in str(info.value) or "refused" in str(info.value)
    assert wait_dead(int(marker.read_text()))
    assert not engine.running()


@pytest.mark.parametrize(
    ("mode", "seen"),
    [("garbage", "not an OpenAI model list"), ("wrong-model", "lists ['someone-else'], not 'm'")],
)
def test_engine_answering_garbage_is_not_ready(tmp_path: Path, mode: str, seen: str) -> None:
    engine = fake(mode, tmp_path, startup_timeout_s=1.0)
    with pytest.raises(EngineError, match=re.escape(seen)):
        engine.start()
    assert not engine.running()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    engine = fake("ignore-term", tmp_path, stop_grace_s=0.5).start()
    pid = engine.pid
    started = time.monotonic()
    assert engine.stop() == -9
    assert time.monotonic() - started < 5
    assert pid is not None and not alive(pid)


def test_stop_takes_the_servers_children_too(tmp_path: Path) -> None:
    engine = fake("spawn-child", tmp_path).start()
    match = re.search(r"^child (\d+)$", engine.log_tail(), re.MULTILINE)
    assert match, engine.log_tail()
    grandchild = int(match.group(1))
    assert alive(grandchild)
    engine.stop()
    assert wait_dead(grandchild)


def test_an_engine_dropped_without_stop_is_killed_by_its_finaliser(tmp_path: Path) -> None:
    engine = fake("serve", tmp_path).start()
    pid = engine.pid
    del engine
    gc.collect()
    assert pid is not None and wait_dead(pid)


def test_a_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    # The parent starts an engine and is then SIGKILLed: no atexit, no finaliser runs; the
    # death signal set by the launch shim must stop the server anyway.
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from relgate.engines import CommandEngine\n"
        "from relgate.engines.process import UVICORN_PORT\n"
        f"e = CommandEngine([sys.executable, {FAKE!r}, 'serve', '0', 'm'], served_model='m',"
        " port_pattern=UVICORN_PORT, log_path=sys.argv[1]).start()\n"
        "print(e.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run(
        [PY, "-c", script, str(tmp_path / "orphan.log")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    pid = int(out.stdout.split()[0])
    assert wait_dead(pid), f"server {pid} outlived its parent"


def test_check_reports_a_server_that_died(tmp_path: Path) -> None:
    with fake("serve", tmp_path) as engine:
        assert engine.pid is not None
        os.kill(engine.pid, 9)
        assert wait_dead(engine.pid)
        with pytest.raises(EngineError, match="killed by SIGKILL"):
            engine.check()


def test_starting_twice_is_refused(tmp_path: Path) -> None:
    with fake("serve", tmp_path) as engine, pytest.raises(EngineError, match="already started"):
        engine.start()


def test_port_is_unknown_before_start(tmp_path: Path) -> None:
    engine = fake("serve", tmp_path)
    with pytest.raises(EngineError, match="not started"):
        _ = engine.base_url


def test_chat_rejects_garbage(tmp_path: Path) -> None:
    with fake("garbage-chat", tmp_path) as engine:
        with pytest.raises(EngineResponseError, match="not a chat completion"):
            chat(engine.base_url, "m", [{"role": "user", "content": "hi"}])
        engine.check()  # the server is up; its answers are what is wrong


def test_chat_says_when_logprobs_are_missing(tmp_path: Path) -> None:
    with fake("no-logprobs", tmp_path) as engine:
        reply = chat(engine.base_url, "m", [{"role": "user", "content": "hi"}], logprobs=True)
    assert reply.text == "yes" and reply.top_logprobs is None


def test_chat_to_a_dead_server_is_unavailable(tmp_path: Path) -> None:
    with fake("serve", tmp_path) as engine:
        url = engine.base_url
    with pytest.raises(JudgeUnavailableError, match="ConnectionRefusedError"):
        chat(url, "m", [{"role": "user", "content": "hi"}], timeout_s=5)


def test_own_log_is_removed_after_a_clean_stop() -> None:
    engine = CommandEngine(
        [PY, FAKE, "serve", "0", "m"],
        served_model="m",
        port_pattern=UVICORN_PORT,
        probe_interval_s=0.02,
    )
    with engine:
        log = engine.log_path
        assert log is not None and log.is_file()
    assert not log.exists()


def test_llamacpp_command_is_loopback_with_a_stable_name(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    engine = LlamaCppServer(gguf, alias="tiny-chat", n_threads=1, seed=7, extra_bufts=False)
    argv = engine.argv(0)
    assert argv[:2] == ["-m", "llama_cpp.server"]
    pairs = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert pairs["--host"] == "127.0.0.1"
    assert pairs["--port"] == "0"
    assert pairs["--model"] == str(gguf)
    assert pairs["--model_alias"] == "tiny-chat"
    assert pairs["--seed"] == "7"
    assert pairs["--interrupt_requests"] == "False"
    assert engine.launch_options() == ["--llama-no-extra-bufts"]
    assert engine.child_env()["OMP_WAIT_POLICY"] == "PASSIVE"
    assert engine.served_model == "tiny-chat"
    assert LlamaCppServer(gguf).served_model == "tiny"


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="neither a file nor a shipped model"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_amx_is_read_from_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx2 amx_tile amx_int8\n")
    assert cpu_has_amx(info)
    info.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert not cpu_has_amx(info)
    assert not cpu_has_amx(tmp_path / "absent")


def test_managed_engine_is_abstract() -> None:
    with pytest.raises(TypeError):
        ManagedEngine(served_model="m")  # type: ignore[abstract]
