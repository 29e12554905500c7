"""The README's path through the Airflow UI, in a real browser (Debian's Chromium, headless).

`make airflow`'s setup (dev/local_standalone.py: airflow standalone, the demo warehouse dated to
the latest night, the sandbox, the sync disarmed) on a free port. As a newcomer would: log in,
trigger with the form's defaults ("Unpause on trigger" on, so the latest night's scheduled run
starts too) and see that nothing was sent; send one contact; start a 2-night backfill with a param
set in the Backfill form; find the ledger Asset. Minutes: it runs 5 DAG runs in real Airflow.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from dev.demo_data import create_demo_warehouse, latest_night
from dev.local_airflow import free_port
from dev.local_standalone import ADMIN_USER, LocalStandalone
from include.consent_sync.contract import DAG_ID, LEDGER_TABLE
from include.consent_sync.live_switch import DISARMED
from include.consent_sync.warehouse import DuckDBWarehouse
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no network but 127.0.0.1: none of Chromium's own background traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_ROWS = 300
RUN_TIMEOUT_S = 300
FINISHED = {"success", "failed"}


def _browser_or_skip():
    """Playwright's sync API driving /usr/bin/chromium; skip (fail under CI=true) without."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} not installed (Debian package chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"playwright not importable: {exc}")
    return sync_playwright


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    sync_playwright = _browser_or_skip()
    home = tmp_path_factory.mktemp("ui")
    warehouse = home / "warehouse.duckdb"
    with DuckDBWarehouse(str(warehouse)) as connection:
        create_demo_warehouse(connection, rows=DEMO_ROWS, interval_end=latest_night())
    log = (home / "standalone.log").open("w")
    try:
        with (
            LocalStandalone(home, warehouse=warehouse, port=free_port(), output=log) as airflow,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            try:
                yield UI(airflow, page, warehouse, home)
            finally:
                page.screenshot(path=str(home / "last.png"))
                browser.close()
    finally:
        log.close()


class UI:
    """The page, plus the REST API and the warehouse to check what the clicks did."""

    def __init__(self, airflow: LocalStandalone, page, warehouse: Path, home: Path) -> None:
        self.airflow, self.page, self.warehouse, self.home = airflow, page, warehouse, home
        self._token = airflow.token()

    def api(self, path: str, **params):
        answer = requests.get(
            f"{self.airflow.url}/api/v2{path}",
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()

    def runs(self) -> list[dict]:
        return self.api(f"/dags/{DAG_ID}/dagRuns", order_by="run_after", limit=100)["dag_runs"]

    def wait_for_runs(self, count: int) -> list[dict]:
        """Until ``count`` runs exist and all have finished; they must all have succeeded."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
                assert not failed, f"runs failed: {failed} (log: {self.home / 'standalone.log'})"
                return runs
            time.sleep(3)
        raise AssertionError(f"runs not finished after {RUN_TIMEOUT_S} s: {self.runs()}")

    def ledger(self, run_ids) -> list[dict]:
        """The ledger rows of these runs (read while no run is active: DuckDB has one writer)."""
        import duckdb

        with duckdb.connect(str(self.warehouse), read_only=True) as db:
            cursor = db.execute(
                f"SELECT * FROM {LEDGER_TABLE} WHERE dag_run_id IN (SELECT unnest(?))",
                [list(run_ids)],
            )
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def task_log(self, run_id: str, task_id: str) -> str:
        content = self.api(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")
        return "\n".join(str(line.get("event", line)) for line in content["content"])

    # --- the clicks --------------------------------------------------------------------------

    def log_in(self) -> None:
        page = self.page
        page.goto(self.airflow.url + "/")
        page.wait_for_url("**/auth/login**")
        page.locator("input:not([type=password])").first.fill(ADMIN_USER)
        page.locator("input[type=password]").fill(self.airflow.password)
        page.locator("button[type=submit]").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)

    def open_trigger_form(self):
        self.page.goto(f"{self.airflow.url}/dags/{DAG_ID}")
        self.page.get_by_role("button", name="Trigger").first.click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_text("Run Parameters").wait_for()
        return dialog

    def trigger(self, emails: list[str] | None = None) -> None:
        dialog = self.open_trigger_form()
        if emails:
            dialog.locator("#element_emails").fill("\n".join(emails))
        dialog.get_by_role("button", name="Trigger", exact=True).click()
        dialog.wait_for(state="hidden")

    def pick_date(self, field, when) -> None:
        """Type ``when`` into a date picker until its field shows it. The previous picker must
        have closed first, and the field is read back: one CI run under load timed out waiting
        for the form to count 2 runs, with no sign of what it showed."""
        picker = self.page.locator("[data-scope=popover][data-part=content][data-state=open]")
        for _ in range(3):
            field.click()
            picker.get_by_placeholder("YYYY/MM/DD").fill(when.strftime("%Y/%m/%d"))
            picker.get_by_placeholder("HH:mm").fill(when.strftime("%H:%M"))
            self.page.keyboard.press("Escape")
            picker.wait_for(state="hidden")
            shown = field.inner_text().strip()
            if (
                shown == f"{when:%b} {when.day}, {when:%Y %H:%M}"
                or shown == f"{when:%b %d, %Y %H:%M}"
            ):
                return
        raise AssertionError(f"the date picker shows {shown!r}, not {when:%Y-%m-%d %H:%M}")

    def backfill(self, first, last, emails: list[str]) -> None:
        """A backfill of logical dates ``first``..``last`` with param ``emails``, as the README
        says: params in the form, and "Override parameters on existing runs" ticked."""
        dialog = self.open_trigger_form()
        dialog.get_by_text("Run this Dag for a range of dates").click()
        for index, when in enumerate((first, last)):
            self.pick_date(dialog.get_by_test_id("datetime-input").nth(index), when)
        runs = dialog.get_by_text(re.compile(r"\d+ runs? will be triggered"))
        runs.wait_for()
        assert runs.inner_text().startswith("2 runs will be triggered"), runs.inner_text()
        dialog.locator("#element_emails").fill("\n".join(emails))
        # Airflow 3.3's Backfill form sends its params only with this box ticked (else
        # dag_run_conf: null); the README and the DAG doc say so.
        dialog.get_by_text("Override parameters on existing runs").click()
        dialog.get_by_role("button", name="Run Backfill").click()
        dialog.wait_for(state="hidden")


def test_dry_run_then_one_contact_then_a_backfill_with_a_param_then_the_ledger_asset(ui):
    sandbox = ui.airflow.sandbox
    ui.log_in()

    # 1. The trigger form's defaults, "Unpause on trigger" included: a manual run and the latest
    # night's scheduled run, both dry runs while the sync is disarmed.
    ui.trigger()
    runs = ui.wait_for_runs(2)
    assert {r["run_type"] for r in runs} == {"manual", "scheduled"}
    assert sandbox.statuses() == {}
    assert not [r for r in sandbox.requests() if r["method"] != "GET"]
    rows = ui.ledger(r["dag_run_id"] for r in runs)
    assert rows and {r["outcome"] for r in rows} <= {"DRY_RUN", "INVALID", "SKIPPED_SUPERSEDED"}
    dry = [r for r in rows if r["outcome"] == "DRY_RUN"]
    assert dry and {r["error_category"] for r in dry} == {"DISARMED"}
    manual = next(r["dag_run_id"] for r in runs if r["run_type"] == "manual")
    assert DISARMED in ui.task_log(manual, "report")
    assert DISARMED in ui.task_log(manual, "plan")

    # 2. One contact: emails set, dry run left off. Only that contact reaches HubSpot.
    night = latest_night()
    plain = sorted(
        {r["email"] for r in dry if r["email"] == r["email"].strip().lower()},
        key=lambda email: min(r["changed_at"] for r in dry if r["email"] == email),
    )
    # The contact whose earliest waiting change is oldest: it is also a candidate of the
    # backfill's nights (the contact of step 3 must not be the one synced here).
    backfill_contact = plain[0]
    assert min(r["changed_at"] for r in dry if r["email"] == backfill_contact) < night - timedelta(
        days=2
    )
    one = next(e for e in plain[1:] if e != backfill_contact)
    ui.trigger(emails=[one])
    runs = ui.wait_for_runs(3)
    assert {email for email, _, _ in sandbox.statuses()} == {one}
    one_run = runs[-1]["dag_run_id"]
    one_rows = ui.ledger([one_run])
    assert {r["email"] for r in one_rows} == {one}
    assert "SYNCED" in {r["outcome"] for r in one_rows}

    # 3. A 2-night backfill whose runs get the param set in the Backfill form.
    first, last = night - timedelta(days=3), night - timedelta(days=2)
    ui.backfill(first, last, emails=[backfill_contact])
    runs = ui.wait_for_runs(5)
    backfill_runs = [r for r in runs if r["run_type"] == "backfill"]
    assert len(backfill_runs) == 2
    assert [r["conf"]["emails"] for r in backfill_runs] == [[backfill_contact]] * 2
    backfill_rows = ui.ledger(r["dag_run_id"] for r in backfill_runs)
    assert backfill_rows and {r["email"] for r in backfill_rows} == {backfill_contact}

    # 4. The ledger Asset, from the Assets page, with the runs' events: one per run that wrote
    # ledger rows (announce_ledger emits none for a run that changed nothing).
    writers = [r for r in runs if ui.ledger([r["dag_run_id"]])]
    assert 3 <= len(writers) <= 5
    page = ui.page
    page.goto(ui.airflow.url + "/assets")
    page.get_by_text(f"consent_warehouse://{LEDGER_TABLE}").first.click()
    page.wait_for_url("**/assets/**")
    page.get_by_text(f"{len(writers)} Asset Events").wait_for()
    page.screenshot(path=str(ui.home / "asset.png"))
