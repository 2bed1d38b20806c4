"""Prometheus ``/metrics`` scraped during a real rollout (server, gateway, test backends, judge):
per-release requests and latency, rollout phase/step/weight, gate verdicts, judge rows,
receipts of every kind, and the state after the automatic rollback."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from relgate.receipts.model import RECEIPT_KINDS
from rollout_helpers import FAST_SPEC, PHASE, SLICES, Env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(env: Env) -> Samples:
    with urllib.request.urlopen(env.server.web_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def test_metrics_follow_a_rollout_to_its_automatic_rollback(env: Env) -> None:
    v1 = env.register("v1", "b1")
    env.make_live("v1")
    v2 = env.register("v2", "b2", previous="v1")
    env.backends["b2"].set_knobs(degraded_slices=frozenset({"Law"}))
    ro = env.client.start_rollout(v2, overrides=FAST_SPEC, reason="canary")
    rid = ro.rollout_id
    load = env.traffic(200)
    assert all(r.status == 200 for r in load.records)

    during = scrape(env)
    ids = {"tenant": "default", "rollout": rid, "candidate": v2[:12]}
    assert value(during, "relgate_rollout_phase", phase="Progressing", **ids) == 1
    assert value(during, "relgate_rollout_phase", phase="RolledBack", **ids) == 0
    assert value(during, "relgate_rollout_step", **ids) == 1
    assert value(during, "relgate_rollout_steps", **ids) == 3
    assert value(during, "relgate_rollout_candidate_weight_ratio", **ids) == 0.05
    assert value(during, "relgate_live_release_info", tenant="default", release=v1[:12]) == 1
    # Requests per tenant, release and slice, with their latency; nothing in flight now.
    name = "relgate_gateway_requests_total"
    served = {r: sum(1 for x in load.records if x.release == r) for r in (v1, v2)}
    for sha, n in served.items():
        assert total(during, name, tenant="default", release=sha[:12], code="200") >= n
    assert served[v2] > 0
    for slice_name in SLICES:
        assert total(during, name, release=v1[:12], slice=slice_name) > 0
    count = "relgate_gateway_request_duration_seconds_count"
    assert total(during, count, release=v2[:12]) >= served[v2]
    assert total(during, "relgate_gateway_server_errors_total") == 0
    assert total(during, "relgate_gateway_in_flight_requests") == 0
    # Gate verdicts and receipts come from the chain: every declared kind is exported.
    assert value(during, "relgate_gate_verdicts_total", tenant="default", verdict="pass") == 2
    for kind in RECEIPT_KINDS:
        assert ("relgate_receipts_emitted_total", frozenset({("kind", kind)})) in during
    assert value(during, "relgate_receipts_emitted_total", kind="gate_pass") == 2
    assert value(during, "relgate_receipts_emitted_total", kind="rollout_start") == 2
    assert value(during, "relgate_receipts_emitted_total", kind="register") == 2

    env.clock.advance(61)
    # The checkpoint replays traces through the candidate first: generous on a loaded machine.
    env.wait_phase(rid, PHASE.ROLLOUT_PHASE_ROLLED_BACK, timeout=180)
    after = scrape(env)
    assert value(after, "relgate_rollout_phase", phase="RolledBack", **ids) == 1
    assert value(after, "relgate_rollout_phase", phase="Progressing", **ids) == 0
    assert value(after, "relgate_rollout_candidate_weight_ratio", **ids) == 0
    assert value(after, "relgate_receipts_emitted_total", kind="auto_rollback") == 1
    assert value(after, "relgate_live_release_info", tenant="default", release=v1[:12]) == 1
    # The checkpoint's replay scored rows with the monitor's judge; Law is the failing slice.
    assert (
        total(after, "relgate_judge_rows_scored_total")
        >= FAST_SPEC["thresholds"]["min_replay_rows"]
    )
    law = value(after, "relgate_rollout_slice_q", slice="Law", **ids)
    health = value(after, "relgate_rollout_slice_q", slice="Health", **ids)
    assert law < health
