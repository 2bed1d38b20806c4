"""The dashboard's "what is live" answers: the live-now marker, the rollouts index, a manual
rollback after completion (not "Completed 100%"), the plots over time, ungated releases (no
dead gate link) and the sign-in page's same-site-only redirect."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

from dashboard_helpers import COMPLETED_ID, INCONCLUSIVE_ID, World, get


def _text(body: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _login(world: World, nxt: str) -> tuple[int, str | None]:
    data = urllib.parse.urlencode({"key": world.keys["viewer"], "next": nxt}).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(world.url + "/login", data=data, timeout=30) as resp:
            return resp.status, resp.headers.get("Location")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location")


def test_login_keeps_a_same_site_relative_next_and_drops_the_rest(world: World) -> None:
    assert _login(world, "/rollouts?x=1") == (303, "/rollouts?x=1")
    for bad in ("/\t/evil.example", "/\r\n/evil.example", "https://evil.example/", "//e.x"):
        assert _login(world, bad) == (303, "/"), bad
    status, body = get(f"{world.url}/login?next=https://evil.example/")
    assert status == 200 and "evil.example" not in body


def test_live_now_marker_names_the_release_a_rollback_made_live(world: World) -> None:
    v1, v4 = world.shas["v1"], world.shas["v4"]
    _, body = get(world.url + "/", key=world.keys["viewer"])
    live = body.split('id="live-now"', 1)[1].split("</p>", 1)[0]
    assert f"/releases/{v1}" in live and "LIVE" in live
    assert body.count(">LIVE<") == 2  # the banner and v1's row, nothing else
    _, page = get(f"{world.url}/releases/{v1}", key=world.keys["viewer"])
    assert 'id="release-live"><strong class="badge live">LIVE' in page
    _, page = get(f"{world.url}/releases/{v4}", key=world.keys["viewer"])
    assert 'id="release-live">not live' in page


def test_a_manual_rollback_after_completion_is_not_completed_100(world: World) -> None:
    _, page = get(f"{world.url}/rollouts/{COMPLETED_ID}", key=world.keys["viewer"])
    text = _text(page)
    assert 'id="rollout-phase">RolledBack<' in page
    assert "manual rollback to " + world.shas["v1"][:12] in text
    assert "key:test-admin" in text
    assert 'id="rollout-weight">0%<' in page
    head = page.split('id="rollout-phase"', 1)[1].split("</p>", 1)[0]
    assert "Completed" not in head and "100%" not in head
    _, index = get(f"{world.url}/rollouts", key=world.keys["viewer"])
    row = index.split(f'href="/rollouts/{COMPLETED_ID}"', 1)[1].split("</tr>", 1)[0]
    assert "RolledBack" in row and "Completed" not in row
    _, releases = get(world.url + "/", key=world.keys["viewer"])
    assert f'href="/rollouts/{COMPLETED_ID}">RolledBack<' in releases


def test_rollouts_index_lists_every_rollout_newest_first_with_its_state(world: World) -> None:
    status, body = get(f"{world.url}/rollouts", key=world.keys["viewer"])
    assert status == 200
    ids = (COMPLETED_ID, INCONCLUSIVE_ID, world.rollout_id)
    order = [body.index(f'href="/rollouts/{rid}"') for rid in ids]
    assert order == sorted(order)
    row = body.split(f'href="/rollouts/{world.rollout_id}"', 1)[1].split("</tr>", 1)[0]
    assert "RolledBack" in row
    row = body.split(f'href="/rollouts/{INCONCLUSIVE_ID}"', 1)[1].split("</tr>", 1)[0]
    assert "Inconclusive" in row


def test_rollout_page_plots_q_p95_5xx_and_weight_as_inline_svg(world: World) -> None:
    _, page = get(f"{world.url}/rollouts/{world.rollout_id}", key=world.keys["viewer"])
    for key in ("q", "p95", "errors", "weight"):
        svg = page.split(f'id="plot-{key}"', 1)[1].split("</svg>", 1)[0]
        assert "<polyline" in svg, key
        assert 'role="img"' in page.split(f'id="plot-{key}"', 1)[0].rsplit("<svg", 1)[1]
    q = page.split('id="plot-q"', 1)[1].split("</svg>", 1)[0]
    assert ">Law<" in q and ">Health<" in q
    weight = page.split('id="plot-weight"', 1)[1].split("</svg>", 1)[0]
    assert "t+90 s" in weight  # the rollback, 90 s after the start, ends the weight line
    # No network asset and nothing the content security policy would block.
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and " style=" not in page and "<script>" not in page


def test_an_ungated_release_links_to_no_gate_and_its_gate_page_says_not_gated(
    world: World,
) -> None:
    v4 = world.shas["v4"]
    _, body = get(world.url + "/", key=world.keys["viewer"])
    assert f"/releases/{v4}/gate" not in body
    row = body.split(f'href="/releases/{v4}"', 1)[1].split("</tr>", 1)[0]
    assert "not gated" in row
    status, page = get(f"{world.url}/releases/{v4}/gate", key=world.keys["viewer"])
    assert status == 200 and "NOT GATED" in page


def test_no_dead_links_on_any_page(world: World) -> None:
    """Every same-site link of every page answers 200 (crawled from the index)."""
    seen: set[str] = set()
    todo = ["/", "/rollouts", "/receipts"]
    while todo and len(seen) < 300:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        status, body = get(world.url + path, key=world.keys["viewer"])
        assert status == 200, path
        todo += [link for link in re.findall(r'href="(/[^"#]*)"', body) if link not in seen]
    assert any(p.endswith("/gate") for p in seen) and f"/rollouts/{COMPLETED_ID}" in seen
