"""The dashboard's new pages in headless chromium (Debian's, driven by Playwright; see
``.ci/browser.sh``): sign in, the live-now marker, the rollouts index, a rollout's SVG plots,
a manual rollback after completion, an ungated release's gate page. No console error, no
failed request, accessible markup and contrast (``tests/e2e/contrast.js``). Screenshots are
saved under the test's tmp dir (pytest keeps the last runs' as artifacts)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import COMPLETED_ID, World

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_LOW_CONTRAST = (Path(__file__).resolve().parents[2] / "e2e" / "contrast.js").read_text()


@pytest.fixture
def sync_api() -> Any:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: run .ci/browser.sh (Debian's chromium package)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev)")


def _check(page: Any) -> None:
    assert page.evaluate(_LOW_CONTRAST) == []
    assert page.locator("h1").count() == 1
    for svg in page.locator("svg").all():
        assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label")


def _drive(browser: Any, world: World, shots: Path) -> list[str]:
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    base = world.url
    v1, v4 = world.shas["v1"], world.shas["v4"]

    page.goto(f"{base}/login?next=/rollouts")
    page.fill("#key", world.keys["viewer"])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("h1:text('Rollouts')")
    assert page.url == f"{base}/rollouts"
    assert v1[:12] in page.inner_text("#live-now")
    row = page.locator(f"tr:has(a[href='/rollouts/{COMPLETED_ID}'])")
    assert "RolledBack" in row.inner_text() and "Completed" not in row.inner_text()
    _check(page)
    page.screenshot(path=str(shots / "10-rollouts-index.png"), full_page=True)

    page.click("nav >> text=Releases")
    page.wait_for_selector("h1:text('Releases')")
    assert page.locator("strong.badge.live").count() == 2  # banner and v1's row
    v4_row = page.locator(f"tr:has(a[href='/releases/{v4}'])")
    assert "not gated" in v4_row.inner_text()
    assert v4_row.locator(f"a[href='/releases/{v4}/gate']").count() == 0
    _check(page)
    page.screenshot(path=str(shots / "11-releases-live.png"), full_page=True)

    page.goto(f"{base}/rollouts/{world.rollout_id}")
    page.wait_for_selector("#rollout-plots")
    assert page.locator("#rollout-plots svg[role=img]").count() == 4
    assert page.locator("#plot-q polyline").count() >= 2  # Law and Health
    box = page.locator("#plot-weight").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 50  # drawn, not hidden
    _check(page)
    page.screenshot(path=str(shots / "12-rollout-plots.png"), full_page=True)

    page.goto(f"{base}/rollouts/{COMPLETED_ID}")
    assert page.inner_text("#rollout-phase") == "RolledBack"
    assert page.inner_text("#rollout-weight") == "0%"
    _check(page)
    page.screenshot(path=str(shots / "13-manual-rollback.png"), full_page=True)

    page.goto(f"{base}/releases/{v4}/gate")
    assert page.inner_text("#gate-outcome") == "NOT GATED"
    _check(page)
    page.screenshot(path=str(shots / "14-not-gated.png"), full_page=True)
    context.close()
    return errors


def test_new_dashboard_pages_in_a_browser(sync_api: Any, world: World, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    result: dict[str, Any] = {}

    # Playwright's sync API runs an event loop on the thread that uses it: a thread of its own
    # keeps it away from the server's loop and from later tests' asyncio.run.
    def run() -> None:
        try:
            with sync_api.sync_playwright() as p:
                # --no-sandbox: CI runs as root in a container, where the sandbox cannot start.
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                try:
                    result["errors"] = _drive(browser, world, shots)
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised on the test's thread
            result["exc"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(240)
    if "exc" in result:
        raise result["exc"]
    assert result.get("errors") == []
    assert len(list(shots.glob("*.png"))) == 5
