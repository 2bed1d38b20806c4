"""`relgate bench judge --backend openai` on SmolLM2-135M-Instruct (llama.cpp, CPU), as a user
would run it: judge pairs/s, the server's raw prefill on the same prompts in the same run, and
the ratio, at concurrency 1 and 4. Writes data/judge_prefill.json.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/judge_prefill.py [--rows 48]
"""

from __future__ import annotations

import argparse
import json

from common import DATA, machine, write_json
from relgate.cli import app
from relgate.engines import LlamaCppServer
from typer.testing import CliRunner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = {"machine_before": machine(), "runs": []}
    with LlamaCppServer("smollm2", n_threads=args.threads, seed=0, startup_timeout_s=120) as eng:
        for concurrency in (1, 4):
            res = CliRunner().invoke(
                app,
                ["bench", "judge", "--backend", "openai", "--base-url", eng.base_url,
                 "--model", "smollm2", "--rows", str(args.rows), "--batch-size",
                 str(args.rows), "--concurrency", str(concurrency), "--json"],
            )  # fmt: skip
            assert res.exit_code == 0, res.output
            run = json.loads(res.output)
            out["runs"].append({"concurrency": concurrency, **run})
            a = run["prefill_anchor"]
            print(
                f"concurrency {concurrency}: judge {run['rows_per_s']:.2f} pairs/s, raw prefill "
                f"{a['pairs_per_s']:.2f} prompts/s ({a['prompt_tokens_per_s']:.0f} tok/s), "
                f"ratio {a['ratio']:.2f}",
                flush=True,
            )
    out["machine_after"] = machine()
    write_json(DATA / "judge_prefill.json", out)


if __name__ == "__main__":
    main()
