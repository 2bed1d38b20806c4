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


MIN_CEILING = 0.1


def trusted(cal: dict[str, Any]) -> list[str]:
    """Slices whose ceiling CI lower bound clears min_ceiling (else JUDGE_UNTRUSTED)."""
    return [s for s, c in cal.items() if c["low"] >= MIN_CEILING]


def gate_section(gate: dict[str, Any]) -> list[str]:
    out = ["## Gate statistic with the embedding judge (suite subset)", ""]
    cal = gate["calibration"]
    ok = trusted(cal)
    out += [
        "Ceilings (`calibrate(suite, judge, answers=best_answers)`, 95% item-cluster CI):",
        "",
        "| slice | items | rows | ceiling | CI | judge |",
        "|---|---|---|---|---|---|",
    ]
    for s, c in cal.items():
        out.append(
            f"| {s} | {c['n_items']} | {c['n_rows']} | {c['ceiling']:.3f} | "
            f"[{c['low']:.3f}, {c['high']:.3f}] | "
            f"{'trusted' if s in ok else 'JUDGE_UNTRUSTED (CI low < 0.1)'} |"
        )
    out += ["", *baseline_table(gate), "", *law_only_table(gate, ok), "", *global_table(gate, ok)]
    out += ["", *aa_section(gate, ok), "", *full_table(gate)]
    return out


def baseline_table(gate: dict[str, Any]) -> list[str]:
    out = [
        "### The baseline release v1 on the real model (q with its 95% CI; floor 0.65)",
        "",
        "| run | " + " | ".join(gate["calibration"]) + " |",
        "|---|" + "---|" * len(gate["calibration"]),
    ]
    for key, run in gate["runs"].items():
        if not key.startswith("v1"):
            continue
        cells = [f"{f(r['q'])} [{f(r['q_low'])}, {f(r['q_high'])}]" for r in run["slices"].values()]
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    return out


def law_only_table(gate: dict[str, Any], ok: list[str]) -> list[str]:
    out = [
        "### One-slice candidates: what each does to Law and to the other trusted slices",
        "",
        "Change vs v1 (seed 1 for temperature 0.7, v1@t0 for greedy); the other classes of a "
        "law_* release are v1's, answered with the candidate's seed (2), so at temperature 0.7 "
        "they carry exactly the A/A noise of seeds 1 vs 2, and at temperature 0 none.",
        "",
        "| run | Law q | Law change [95% CI] | Law verdict | Law hedge/empty/short | Law mean "
        "tokens | other trusted slices: largest drop [CI], verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, run in gate["runs"].items():
        if not key.startswith("law_"):
            continue
        law = run["slices"]["Law"]
        others = {s: r for s, r in run["slices"].items() if s != "Law" and s in ok}
        worst = min(others.items(), key=lambda kv: kv[1]["change"])
        verdicts: dict[str, int] = {}
        for r in others.values():
            verdicts[verdict(r)] = verdicts.get(verdict(r), 0) + 1
        out.append(
            f"| {key} | {f(law['q'])} | {f(law['change'])} [{f(law['change_low'])}, "
            f"{f(law['change_high'])}] | {verdict(law)} | {hedge_share(law)} | "
            f"{law['completion_tokens_mean']:.1f} | {worst[0]} {f(worst[1]['change'])} "
            f"[{f(worst[1]['change_low'])}, {f(worst[1]['change_high'])}]; "
            + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
            + " |"
        )
    return out


def global_table(gate: dict[str, Any], ok: list[str]) -> list[str]:
    slices = list(gate["calibration"])
    out = [
        "### Releases that change every class (change vs v1 [95% CI] verdict; hedges/n)",
        "",
        "| run | " + " | ".join(slices) + " |",
        "|---|" + "---|" * len(slices),
    ]
    for key, run in gate["runs"].items():
        if not key.startswith(("reworded", "never_legal", "fewshot_hedge")):
            continue
        cells = []
        for sl in slices:
            r = run["slices"][sl]
            tag = verdict(r) if sl in ok else "UNTRUSTED"
            cells.append(
                f"{f(r['change'])} [{f(r['change_low'])}, {f(r['change_high'])}] {tag}; "
                f"h {r['classes'].get('hedge', 0)}/{r['n_items']}"
            )
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    return out


def aa_section(gate: dict[str, Any], ok: list[str]) -> list[str]:
    pairs = gate.get("aa", {}).get("pairs", [])
    if not pairs:
        return []
    out = [
        "### A/A noise: every pair of v1 runs with different seeds (temperature 0.7)",
        "",
        "| slices | changes | mean | sd | min | max | mean CI width | CI low >= -0.05 (PASS) "
        "| CI high < -0.05 (FAIL) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, keep in (("all six", list(gate["calibration"])), ("trusted only", ok)):
        rows = [r for p in pairs for sl, r in p["slices"].items() if sl in keep]
        ch = [r["change"] for r in rows]
        out.append(
            f"| {label} | {len(ch)} | {statistics.fmean(ch):+.3f} | {statistics.stdev(ch):.3f} "
            f"| {min(ch):+.3f} | {max(ch):+.3f} | "
            f"{statistics.fmean(r['change_high'] - r['change_low'] for r in rows):.3f} | "
            f"{sum(r['change_low'] >= -MARGIN for r in rows)} | "
            f"{sum(r['change_high'] < -MARGIN for r in rows)} |"
        )
    out += [
        "",
        "| slice | the 6 pairwise changes (q units) | their CI lows | sd |",
        "|---|---|---|---|",
    ]
    for sl in gate["calibration"]:
        ch = [p["slices"][sl]["change"] for p in pairs]
        lows = [p["slices"][sl]["change_low"] for p in pairs]
        out.append(
            f"| {sl} | {', '.join(f(x) for x in ch)} | {', '.join(f(x) for x in lows)} | "
            f"{statistics.stdev(ch):.3f} |"
        )
    return out


def full_table(gate: dict[str, Any]) -> list[str]:
    slices = list(gate["calibration"])
    out = [
        "### Every run and slice",
        "",
        "q (= rho / ceiling); d = paired change in q vs the baseline run with its 95% CI and the "
        "verdict of the evidence rule on the change alone (FAIL: CI entirely below -0.05; PASS: "
        "CI low >= -0.05; else INSUFF; no Holm); h/e/s = hedge/empty/short answers.",
        "",
        "| run | " + " | ".join(slices) + " |",
        "|---|" + "---|" * len(slices),
    ]
    for key, run in gate["runs"].items():
        cells = []
        for sl in slices:
            r = run["slices"][sl]
            cell = f"q {f(r['q'])}"
            if "change" in r:
                cell += (
                    f"<br>d {f(r['change'])} [{f(r['change_low'])}, {f(r['change_high'])}] "
                    f"{verdict(r)}"
                )
            cell += f"<br>h/e/s {hedge_share(r)}"
            cells.append(cell)
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    return out


def subset_timing() -> list[str]:
    """Time to answer each slice once, from the per-answer latencies of the v1 runs."""
    per: dict[str, list[float]] = {}
    items: dict[str, int] = {}
    runs = sorted((DATA / "answers").glob("v1__s*.jsonl"))
    for path in runs:
        lines = path.read_text().splitlines()[1:]
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for line in lines:
            a = json.loads(line)
            sums[a["slice"]] = sums.get(a["slice"], 0.0) + a["seconds"]
            counts[a["slice"]] = counts.get(a["slice"], 0) + 1
        for sl, v in sums.items():
            per.setdefault(sl, []).append(v)
            items[sl] = counts[sl]
    out = [
        f"### Time to answer each slice once (v1, temperature 0.7, 1 thread; {len(runs)} runs: "
        "median [min, max] of the summed request latencies)",
        "",
        "| slice | items | seconds |",
        "|---|---|---|",
    ]
    total = [0.0] * len(runs)
    for sl, v in per.items():
        out.append(
            f"| {sl} | {items[sl]} | {statistics.median(v):.0f} [{min(v):.0f}, {max(v):.0f}] |"
        )
        total = [t + x for t, x in zip(total, v, strict=True)]
    out.append(
        f"| all | {sum(items.values())} | {statistics.median(total):.0f} "
        f"[{min(total):.0f}, {max(total):.0f}] |"
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

    def order(item: tuple[str, Any]) -> tuple[Any, ...]:
        kind, *parts = item[0].split()
        values = dict(p.split("=") for p in parts)
        return (kind, -int(values["threads"]), int(values["size"]), int(values["concurrency"]))

    configs = sorted(t["configs"].items(), key=order)
    for key, c in configs:
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
    for key, c in configs:
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


def llm_judge_section(j: dict[str, Any]) -> list[str]:
    out = ["## LLM judge: OpenAIJudge against SmolLM2-135M-Instruct on llama.cpp", ""]
    out.append(f"Before: {machine_line(j.get('machine_before'))}.  ")
    out.append(f"After: {machine_line(j.get('machine_after'))}.")
    lp = j["logprobs"]
    out += [
        "",
        f"Logprobs after the judge prompt (max_tokens 1, top_logprobs 20, {lp['requests']} "
        f"calibration pairs): top_logprobs present in {lp['with_top_logprobs']}, entries "
        f"returned {lp['top_logprobs_returned']}; 'yes' among them in {lp['yes_in_top']} "
        f"(median rank {lp['yes_rank_median']}), 'no' in {lp['no_in_top']} (median rank "
        f"{lp['no_rank_median']}); probability mass on yes+no median "
        f"{f(lp['yes_no_mass_median'], '{:.2f}')}, min {f(lp['yes_no_mass_min'], '{:.2f}')}; "
        f"neither among the top 20: {lp['neither_in_top']}; generated first tokens "
        f"{lp['first_tokens']}.",
        "",
    ]
    sample = j["sample"]
    out += [
        f"Calibration sample: {sample['items']} items ({sample['rows']} rows), up to 12 items "
        "per slice; ceiling = rho of TruthfulQA's best answers (95% item-cluster CI).",
        "",
        "| slice | LLM judge, reference first | LLM judge, answer first | embedding, same "
        "sample | embedding, whole subset |",
        "|---|---|---|---|---|",
    ]

    def cell(cal: dict[str, Any] | None, sl: str) -> str:
        if not cal:
            return "not run"
        if "error" in cal:
            return "error: " + cal["error"][:60]
        c = cal[sl]
        flag = "" if c["low"] >= MIN_CEILING else " UNTRUSTED"
        return f"{c['ceiling']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] n={c['n_items']}{flag}"

    ref = j.get("calibration_reference_first")
    ans = j.get("calibration_answer_first")
    emb = j.get("calibration_embedding_same_sample")
    full = j.get("calibration_embedding_full_subset")
    for sl in emb or {}:
        out.append(
            f"| {sl} | {cell(ref, sl)} | {cell(ans, sl)} | {cell(emb, sl)} | {cell(full, sl)} |"
        )
    for key in ("calibration_reference_first_s", "calibration_answer_first_s"):
        if key in j:
            out.append(f"\n{key}: {j[key]:.0f} s")
    out += [
        "",
        "Throughput (rows in suite order; anchor = the same prompts with a random number in "
        "front of the system message, max_tokens 1, one at a time: raw prefill with nothing "
        "to reuse). Ratio = judge pairs/s over anchor pairs/s of the same layout and round.",
        "",
        "| round | layout | what | concurrency | pairs/s | prompt tok/s | server CPU s / wall s "
        "| ratio to anchor | pairs per server CPU-s | ratio per CPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    anchors = {(r["round"], r["layout"]): r for r in j["throughput"] if r["kind"] == "anchor"}
    for r in j["throughput"]:
        a = anchors[(r["round"], r["layout"])]
        tok = r.get("prompt_tokens_per_s")
        tok_text = f"{tok:.0f}" if tok else f"({r['pairs_per_s'] * a['prompt_tokens_mean']:.0f})"
        out.append(
            f"| {r['round']} | {r['layout']} | {r['kind']} | {r.get('concurrency', 1)} | "
            f"{r['pairs_per_s']:.2f} | {tok_text} | {r['server_cpu_s']:.0f} / "
            f"{r['wall_s']:.0f} | {r['pairs_per_s'] / a['pairs_per_s']:.2f} | "
            f"{r['pairs'] / r['server_cpu_s']:.2f} | "
            f"{(r['pairs'] / r['server_cpu_s']) / (a['pairs'] / a['server_cpu_s']):.2f} |"
        )
    for r in j.get("throughput_cache", []):
        a = anchors[(0, r["layout"])]
        out.append(
            f"| - | {r['layout']} | judge, server --cache True | 1 | {r['pairs_per_s']:.2f} | "
            f"| {r['server_cpu_s']:.0f} / {r['wall_s']:.0f} | "
            f"{r['pairs_per_s'] / a['pairs_per_s']:.2f} (vs round 0 anchor) | "
            f"{r['pairs'] / r['server_cpu_s']:.2f} | "
            f"{(r['pairs'] / r['server_cpu_s']) / (a['pairs'] / a['server_cpu_s']):.2f} |"
        )
    out.append("")
    mean_len = statistics.fmean(a["prompt_tokens_mean"] for a in anchors.values())
    out.append(f"Anchor prompt length: {mean_len:.0f} tokens on average (incl. the random number).")
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
        lines += [*runs_section(), "", *subset_timing(), ""]
    gate = load("gate_embedding.json")
    if gate:
        lines += [*gate_section(gate), ""]
    judge = load("llm_judge.json")
    if judge:
        lines += [*llm_judge_section(judge), ""]
    fm = load("failure_modes.json")
    if fm:
        lines += [*failure_section(fm), ""]
    (DATA / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
