"""Every dashboard route over real HTTP against a real server: 401 and no data without a viewer
key, 200 with one, and what each page says."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from dashboard_helpers import World, get, start_server
from relgate.access import Role
from relgate.dashboard import dashboard_url
from relgate.receipts import verify_bundle
from relgate.service.auth import create_key


def _routes(w: World) -> list[str]:
    v2 = w.shas["v2"]
    return [
        "/",
        f"/releases/{v2}",
        f"/releases/{v2}/gate",
        f"/releases/{w.shas['v4']}/gate",
        "/rollouts",
        f"/rollouts/{w.rollout_id}",
        f"/rollouts/{w.rollout_id}/timeline",
        "/receipts",
        "/receipts/bundle.json",
    ]


def _text(body: str) -> str:
    """Visible text of a page (tags dropped, whitespace collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _request(
    w: World, method: str, path: str, form: dict[str, str] | None = None, **headers: str
) -> Reply:
    parts = urllib.parse.urlsplit(w.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urllib.parse.urlencode(form)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Reply(
            resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
        )
    finally:
        conn.close()


def _post(w: World, path: str, form: dict[str, str], cookie: str | None = None) -> Reply:
    return _request(w, "POST", path, form, **({"Cookie": cookie} if cookie else {}))


@pytest.mark.parametrize("index", range(7))
def test_every_data_route_is_401_without_a_key_and_leaks_nothing(world: World, index: int) -> None:
    path = _routes(world)[index]
    for key in (None, "rgk_not-a-key", ""):
        status, body = get(world.url + path, key=key)
        assert status == 401, (path, key)
        # The sign-in form echoes the requested path (to return there): not data.
        body = body.replace(f'name="next" value="{path}"', "")
        for sha in world.shas.values():
            assert sha[:12] not in body
        assert world.rollout_id not in body
        assert "auto_rollback" not in body and "Law" not in body


@pytest.mark.parametrize("index", range(7))
def test_every_data_route_is_200_with_a_viewer_key(world: World, index: int) -> None:
    status, body = get(world.url + _routes(world)[index], key=world.keys["viewer"])
    assert status == 200
    assert body


def test_unknown_session_cookie_is_401(world: World) -> None:
    status, _ = get(world.url + "/", cookie="relgate_session=forged")
    assert status == 401


def test_login_sets_an_httponly_strict_session_cookie_and_logout_ends_it(world: World) -> None:
    resp = _post(world, "/login", {"key": world.keys["viewer"], "next": "/receipts"})
    assert resp.status == 303
    assert resp.getheader("Location") == "/receipts"
    set_cookie = resp.getheader("Set-Cookie") or ""
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Max-Age" not in set_cookie and "expires" not in set_cookie.lower()
    assert world.keys["viewer"] not in set_cookie
    cookie = set_cookie.split(";", 1)[0]
    status, body = get(world.url + "/", cookie=cookie)
    assert status == 200 and world.shas["v1"][:12] in body
    out = _post(world, "/logout", {}, cookie=cookie)
    assert out.status == 303
    status, _ = get(world.url + "/", cookie=cookie)
    assert status == 401


def test_login_with_a_bad_key_is_401_without_a_cookie(world: World) -> None:
    resp = _post(world, "/login", {"key": "rgk_wrong", "next": "/"})
    assert resp.status == 401
    assert resp.getheader("Set-Cookie") is None
    assert "unknown API key" in resp.body


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
        "///evil.example",
    ],
)
def test_login_never_redirects_off_site(world: World, target: str) -> None:
    resp = _post(world, "/login", {"key": world.keys["viewer"], "next": target})
    assert resp.status == 303
    assert resp.getheader("Location") == "/"


def test_pages_carry_a_strict_content_security_policy(world: World) -> None:
    resp = _request(world, "GET", "/", Authorization=f"Bearer {world.keys['viewer']}")
    csp = resp.getheader("Content-Security-Policy") or ""
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert resp.getheader("Cache-Control") == "no-store"


def test_static_assets_are_public_and_hold_no_data(world: World) -> None:
    for name in ("dashboard.css", "live.js", "favicon.svg"):
        status, body = get(f"{world.url}/static/{name}")
        assert status == 200 and body
        assert world.shas["v1"][:12] not in body


def test_releases_list_shows_gate_verdicts_and_rollout_phase(world: World) -> None:
    _, body = get(world.url + "/", key=world.keys["viewer"])
    text = _text(body)
    v1, v2 = world.shas["v1"], world.shas["v2"]
    assert f"/releases/{v1}" in body and f"/releases/{v2}" in body
    assert f"rel_{v2[:12]}" in text and "demo/demo-v2" in text and "demo/v2" in text
    assert "fail, overridden" in text and " pass " in text
    assert f'href="/rollouts/{world.rollout_id}">RolledBack<' in body
    assert "key:test-releaser" in text


def test_release_page_has_manifest_closed_weights_statement_and_chain(world: World) -> None:
    v2 = world.shas["v2"]
    _, body = get(f"{world.url}/releases/{v2}", key=world.keys["viewer"])
    text = _text(body)
    assert "cannot be attested" in text and "closed-weight API model demo/demo-v2" in text
    assert "&#34;previous_release&#34;" in body or "&quot;previous_release&quot;" in body
    assert world.shas["v1"] in body  # the pretty manifest names its previous release
    for kind in ("register", "gate_fail", "gate_override", "rollout_start", "auto_rollback"):
        assert f"kind-{kind}" in body, kind
    assert body.count("v-verified") >= 5 and "v-broken" not in body


def test_gate_page_law_fails_worst_first_aggregate_not_decisive(world: World) -> None:
    _, body = get(f"{world.url}/releases/{world.shas['v2']}/gate", key=world.keys["viewer"])
    rows = re.findall(r'<tr class="verdict-([A-Z_]+)" data-slice="([^"]+)"', body)
    assert ("FAIL", "Law") in rows
    failing = [name for verdict, name in rows if verdict == "FAIL"]
    assert failing == ["Law"]
    assert rows[0] == ("FAIL", "Law")  # worst slice first
    assert 'id="aggregate-row"' in body and "not decisive" in body
    assert "<svg" in body and 'role="img"' in body and "aria-label=" in body
    assert 'id="calibration-table"' in body and "Kendall tau-b" in body
    text = _text(body)
    assert "ship v2 to show the canary catching what the gate caught" in text
    assert "gate_override_sha256" in text
    assert "FAIL" in _text(body.split('id="gate-outcome"', 1)[1][:80])


def test_gate_page_of_a_passing_release_has_no_override(world: World) -> None:
    # v3 (gated against v1) passes; v1, a cold start, fails until an override opens it.
    _, body = get(f"{world.url}/releases/{world.shas['v3']}/gate", key=world.keys["viewer"])
    assert 'id="override-h"' not in body
    assert "PASS" in _text(body.split('id="gate-outcome"', 1)[1][:80])


def test_rollout_page_shows_steps_holds_readings_and_the_automatic_rollback(world: World) -> None:
    _, body = get(f"{world.url}/rollouts/{world.rollout_id}", key=world.keys["viewer"])
    text = _text(body)
    assert "RolledBack" in text
    assert "step 1: weight 5%" in text and "step 2: weight 25%" in text
    assert "hold at this checkpoint: dwell 70 / 60 s, requests 40 / 5" in text
    assert "below floor on Law" in text
    assert "AUTOMATIC ROLLBACK (monitor)" in text and "receipt: auto_rollback" in text
    assert 'data-live="0"' in body  # over: the page does not poll


def test_a_starved_rollout_shows_the_extended_hold_and_inconclusive(world: World) -> None:
    from dashboard_helpers import INCONCLUSIVE_ID

    _, body = get(f"{world.url}/rollouts/{INCONCLUSIVE_ID}", key=world.keys["viewer"])
    text = _text(body)
    assert 'id="rollout-phase">Inconclusive<' in body
    assert "hold extended: monitors not yet conclusive" in text
    assert "receipt: checkpoint_hold" in text
    assert "INCONCLUSIVE: paused for a human" in text
    assert "receipt: checkpoint_inconclusive" in text
    assert "deadline passed without evidence" in text
    assert 'id="dwell"' in body and 'id="requests"' in body  # the hold, still open
    assert 'data-live="1"' in body  # not over: a human decides; the page keeps polling
    _, listing = get(world.url + "/", key=world.keys["viewer"])
    assert f'href="/rollouts/{INCONCLUSIVE_ID}">Inconclusive<' in listing


def test_timeline_fragment_is_the_same_timeline(world: World) -> None:
    _, page = get(f"{world.url}/rollouts/{world.rollout_id}", key=world.keys["viewer"])
    _, frag = get(f"{world.url}/rollouts/{world.rollout_id}/timeline", key=world.keys["viewer"])
    assert frag.lstrip().startswith('<div class="timeline-wrap" data-over="1">')
    assert _text(frag).strip() in _text(page)


def test_unknown_rollout_and_release_are_404(world: World) -> None:
    assert get(f"{world.url}/rollouts/ro_nope", key=world.keys["viewer"])[0] == 404
    assert get(f"{world.url}/releases/{'0' * 64}", key=world.keys["viewer"])[0] == 404
    assert get(f"{world.url}/releases/not-a-sha", key=world.keys["viewer"])[0] == 400


def test_another_tenants_key_sees_none_of_these_releases(world: World) -> None:
    key = create_key(world.server.store.keys, role=Role.VIEWER, name="other", tenant="other")
    status, body = get(world.url + "/", key=key)
    assert status == 200 and world.shas["v1"][:12] not in body
    assert get(f"{world.url}/releases/{world.shas['v1']}", key=key)[0] == 404
    assert get(f"{world.url}/rollouts/{world.rollout_id}", key=key)[0] == 404


def test_receipts_page_verifies_the_chain_and_the_bundle_verifies_offline(
    world: World, tmp_path: Path
) -> None:
    store = world.server.store
    n = len(store.list_receipts())
    _, body = get(world.url + "/receipts", key=world.keys["viewer"])
    text = _text(body)
    assert f"Verified : {n} receipts" in text
    assert body.count("v-verified") == n
    assert re.search(r'id="tree-size">(\d+)<', body).group(1) == str(n)  # type: ignore[union-attr]
    status, raw = get(world.url + "/receipts/bundle.json", key=world.keys["viewer"])
    assert status == 200
    bundle = json.loads(raw)
    assert len(bundle["receipts"]) == n
    path = tmp_path / "bundle.json"
    path.write_text(raw)
    report = verify_bundle(path, public_key_b64=bundle["public_key_b64"])
    assert report.ok and report.receipts == n
    heads_before = len(store.audit.tree_heads())
    get(world.url + "/receipts", key=world.keys["viewer"])
    assert len(store.audit.tree_heads()) == heads_before  # a page view writes nothing


def test_dashboard_url_names_the_web_port_and_a_working_viewer_key(world: World) -> None:
    line = dashboard_url(world.server)
    assert line.startswith(world.url + "/login ")
    key = re.search(r"(rgk_[A-Za-z0-9_-]+)", line).group(1)  # type: ignore[union-attr]
    assert get(world.url + "/", key=key)[0] == 200


def test_a_tampered_receipt_shows_as_broken(tmp_path: Path, bypass_append_only: object) -> None:
    from dashboard_helpers import build_world

    bg = start_server(tmp_path)
    running = bg.start()
    try:
        w = build_world(running)
        _, before = get(w.url + "/receipts", key=w.keys["viewer"])
        assert "Verified" in before
        with bypass_append_only(running.store, "receipts") as conn:  # type: ignore[operator]
            conn.exec_driver_sql(
                "UPDATE receipts SET body = replace(body, 'ship v2', 'ship v3') "
                "WHERE kind = 'gate_override'"
            )
        _, after = get(w.url + "/receipts", key=w.keys["viewer"])
        text = _text(after)
        assert "Verification FAILED" in text
        assert "v-broken" in after and "v-not-checked" in after
    finally:
        bg.stop()


def test_a_gate_report_altered_on_disk_is_a_clear_500(tmp_path: Path) -> None:
    from dashboard_helpers import build_world

    bg = start_server(tmp_path)
    running = bg.start()
    try:
        w = build_world(running)
        fact = running.store.facts(w.shas["v2"], "gate_result", tenant="default")[-1].payload
        result = running.data_dir / fact["report_dir"] / "result.json"
        result.write_text(result.read_text().replace('"Law"', '"Lore"'))
        status, body = get(f"{w.url}/releases/{w.shas['v2']}/gate", key=w.keys["viewer"])
        assert status == 500
        assert "does not hash to the recorded gate_result_sha256" in _text(body)
        assert "Lore" not in body
    finally:
        bg.stop()
