"""Render the recorded measurements (``data/*.json``) as Markdown tables: ``data/REPORT.md``.

Every number in the report is read from the JSON files the other scripts wrote; nothing is
typed in by hand.

    python benches/real_model/report.py
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MARGIN = 0.05
FLOOR = 0.65


def load(name: str) -> dict[str, Any] | None:
    path = DATA / name
    return json.loads(path.read_text()) if path.exists() else None


def f(x: Any, fmt: str = "{:+.2f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


def verdict(row: dict[str, Any]) -> str:
    """The evidence rule on the change alone: FAIL when the whole CI is below -margin, PASS
    when its lower bound is at or above -margin, else INSUFFICIENT (no Holm: per slice)."""
    if "change" not in row or row["change_high"] is None:
        return ""
    if row["change_high"] < -MARGIN:
        return "FAIL"
    if row["change_low"] >= -MARGIN:
        return "PASS"
    return "INSUFF"


def hedge_share(row: dict[str, Any]) -> str:
    n = row["n_items"]
    c = row["classes"]
    h, e, s = c.get("hedge", 0), c.get("empty", 0), c.get("short", 0)
    return f"{h}/{e}/{s} of {n}"


def gate_section(gate: dict[str, Any]) -> list[str]:
    out = ["## Gate statistic with the embedding judge (suite subset)", ""]
    cal = gate["calibration"]
    out += [
        "Ceilings (`calibrate(suite, judge, answers=best_answers)`, 95% item-cluster CI):",
        "",
        "| slice | items | rows | ceiling | CI |",
        "|---|---|---|---|---|",
    ]
    for s, c in cal.items():
        out.append(
            f"| {s} | {c['n_items']} | {c['n_rows']} | {c['ceiling']:.3f} | "
            f"[{c['low']:.3f}, {c['high']:.3f}] |"
        )
    slices = list(cal)
    out += [
        "",
        "Per run and slice: q (= rho / ceiling) and the paired change in q vs the baseline run "
        "(v1 seed 1 for sampled runs, v1@t0 for greedy ones) with its 95% CI; the verdict of the "
        "evidence rule on the change alone (FAIL: CI entirely below -0.05; PASS: CI low >= -0.05; "
        "else INSUFF); hedges/empty/short answers per slice.",
        "",
    ]
    header = "| run | " + " | ".join(slices) + " |"
    out += [header, "|---|" + "---|" * len(slices)]
    for key, run in gate["runs"].items():
        cells = []
        for s in slices:
            r = run["slices"][s]
            cell = f"q {f(r['q'])}"
            if "change" in r:
                cell += (
                    f"<br>d {f(r['change'])} [{f(r['change_low'])}, {f(r['change_high'])}] "
                    f"{verdict(r)}"
                )
            cell += f"<br>h/e/s {hedge_share(r)}"
            cells.append(cell)
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    aa = gate.get("aa", {}).get("summary")
    if aa:
        out += [
            "",
            "### A/A noise (every pair of v1 runs with different seeds, temperature 0.7)",
            "",
            f"{aa['n_changes']} per-slice changes: mean {aa['mean']:+.3f}, sd {aa['sd']:.3f}, "
            f"min {aa['min']:+.3f}, max {aa['max']:+.3f}; "
            f"mean 95% CI width {aa['ci_width_mean']:.3f}.",
            "",
            "| slice | changes (q units) | CI lows | sd |",
            "|---|---|---|---|",
        ]
        for s, v in aa["per_slice"].items():
            ch = v["changes"]
            sd = statistics.stdev(ch) if len(ch) > 1 else math.nan
            out.append(
                f"| {s} | {', '.join(f(x) for x in ch)} | "
                f"{', '.join(f(x) for x in v['ci_lows'])} | {f(sd, '{:.3f}')} |"
            )
    return out


def machine_line(m: dict[str, Any] | None) -> str:
    if not m:
        return ""
    busy = "; ".join(m.get("busy", [])[:3])
    return f"{m['cpus']} CPUs ({m['cpu']}), load average {m['loadavg']}, busiest others: {busy}"


def throughput_section(t: dict[str, Any]) -> list[str]:
    out = ["## Throughput (llama.cpp server, SmolLM2-135M-Instruct Q4_1)", ""]
    out.append(f"Before: {machine_line(t.get('machine_before'))}.  ")
    out.append(f"After: {machine_line(t.get('machine_after'))}.")
    out += ["", "Startup (process start to `GET /v1/models` listing the model):", ""]
    out += ["| threads | ready s | first 1-token completion s |", "|---|---|---|"]
    for s in t["startup"]:
        out.append(f"| {s['threads']} | {s['ready_s']:.2f} | {s['first_completion_s']:.3f} |")
    out += [
        "",
        "Generation (v1 template, temperature 0.7, 8 subset items per round; median [min, max] "
        "over rounds; the server serializes requests):",
        "",
        "| threads | max_tokens | concurrency | answers/s | generated tok/s | tok per server "
        "CPU-s | mean completion tokens | p50 latency s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def rng(c: dict[str, Any], key: str, fmt: str = "{:.2f}") -> str:
        lo, hi = c[key + "_range"]
        return f"{fmt.format(c[key])} [{fmt.format(lo)}, {fmt.format(hi)}]"

    for key, c in t["configs"].items():
        if not key.startswith("generation"):
            continue
        parts = dict(p.split("=") for p in key.split()[1:])
        out.append(
            f"| {parts['threads']} | {parts['size']} | {parts['concurrency']} | "
            f"{rng(c, 'answers_per_s')} | {rng(c, 'generated_tokens_per_s', '{:.1f}')} | "
            f"{rng(c, 'generated_tokens_per_cpu_s', '{:.1f}')} | "
            f"{c['completion_tokens_mean']:.1f} | {c['latency_p50_s']:.2f} |"
        )
    out += [
        "",
        "Prefill (plain completions, max_tokens 1, no shared prefix):",
        "",
        "| server | threads | words | prompt tokens | concurrency | prompt tok/s | "
        "prompt tok per server CPU-s |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, c in t["configs"].items():
        if not key.startswith("prefill"):
            continue
        kind = key.split()[0]
        parts = dict(p.split("=") for p in key.split()[1:])
        server = "logits_all False" if kind.endswith("no_logits_all") else "default"
        out.append(
            f"| {server} | {parts['threads']} | {parts['size']} | {c['prompt_tokens_mean']:.0f} "
            f"| {parts['concurrency']} | {rng(c, 'prompt_tokens_per_s', '{:.0f}')} | "
            f"{rng(c, 'prompt_tokens_per_cpu_s', '{:.0f}')} |"
        )
    return out


def runs_section() -> list[str]:
    out = ["## Recorded runs (suite subset, one server, 1 thread, concurrency 1)", ""]
    out += [
        "| run | answers | wall s | answers/s | load before | load after |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted((DATA / "answers").glob("*.jsonl")):
        with path.open() as fh:
            meta = json.loads(fh.readline())["meta"]
            n = sum(1 for _ in fh)
        out.append(
            f"| {path.stem} | {n} | {meta['wall_s']:.0f} | {n / meta['wall_s']:.2f} | "
            f"{meta['machine_before']['loadavg'][0]} | {meta['machine_after']['loadavg'][0]} |"
        )
    det = load("determinism.json")
    if det:
        out += [
            "",
            "Determinism (non-Law items re-asked later, same per-request seed): "
            + ", ".join(f"{k}: {v['identical']}/{v['asked']} identical" for k, v in det.items()),
        ]
    return out


def failure_section(fm: dict[str, Any]) -> list[str]:
    out = ["## Failure modes (llama-cpp-python 0.3.36 server)", ""]
    out += [f"Server with n_ctx 256 ready in {fm['startup_s_n_ctx_256']:.2f} s.", ""]
    out += ["| request | HTTP status | what came back |", "|---|---|---|"]
    for name, r in fm["bodies_n_ctx_256"].items():
        if "status" in r:
            extra = ""
            if "finish_reason" in r:
                extra = f" finish_reason {r['finish_reason']}, usage {r['usage']}"
            if "top_logprobs_returned" in r:
                extra = f" {r['top_logprobs_returned']} top logprobs returned"
            body = r.get("body", "")
            content = re.search(r'"content":"((?:[^"\\]|\\.)*)"', body)
            finish = re.search(r'"finish_reason":"?(\w+)', body)
            if r["status"] == 200 and content:
                reason = finish.group(1) if finish else "?"
                body = f"content {content.group(1)!r}, finish_reason {reason}"
                extra = ""
            body = body.replace("|", "/").replace("\\n", " ").replace("\n", " ")[:160]
            out.append(f"| {name} | {r['status']} | {body}{extra} |")
        elif "ok" in r:
            what = (
                repr(r.get("value"))
                if r["ok"]
                else f"{r.get('error')}: {r.get('message', '')[:160]}"
            )
            out.append(f"| {name} (relgate client) | | {str(what).replace('|', '/')} |")
    out += ["", "| case | outcome | seconds |", "|---|---|---|"]
    groups = ("logprobs", "kill_mid_request", "freeze")
    for group in groups:
        for name, r in fm[group].items():
            if isinstance(r, dict) and "ok" in r:
                what = (
                    r.get("value")
                    if r["ok"]
                    else (f"{r.get('error', r.get('unexpected'))}: {r.get('message', '')[:140]}")
                )
                out.append(f"| {group}: {name} | {str(what).replace('|', '/')} | {r['s']} |")
            elif isinstance(r, dict):
                out.append(f"| {group}: {name} | {r} | |")
            else:
                out.append(f"| {group}: {name} | {r} | |")
    for key in ("stream_interrupt_true", "stream_interrupt_false"):
        r = fm[key]
        out.append(
            f"| two concurrent streams, interrupt_requests={r['interrupt_requests']} | "
            f"first: {r['first']}; second: {r['second']} | |"
        )
    for key in ("corrupt_model", "busy_port"):
        r = fm[key]
        what = r.get("value") if r["ok"] else f"{r.get('error')}: {r.get('message', '')[:160]}"
        out.append(f"| {key} | {str(what).replace('|', '/')} | {r['s']} |")
    return out


def main() -> None:
    lines = ["# Real-model measurements (generated by report.py from data/*.json)", ""]
    t = load("throughput.json")
    if t and "configs" in t:
        lines += [*throughput_section(t), ""]
    if (DATA / "answers").exists():
        lines += [*runs_section(), ""]
    gate = load("gate_embedding.json")
    if gate:
        lines += [*gate_section(gate), ""]
    fm = load("failure_modes.json")
    if fm:
        lines += [*failure_section(fm), ""]
    (DATA / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
