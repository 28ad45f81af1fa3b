"""The web console in a real headless browser (Debian's chromium, driven by Playwright) over
``local up --console``, in-process: the offline stack, its API front, and the console started the
way ``local up --console`` starts it. Submit a file and watch it complete, see an item-errors job's
errors grouped, download results.jsonl and compare it with the API's, cancel a running job with
the keyboard, and see a custom_id and an answer containing ``<script>`` rendered as text.
With CONSOLE_SCREENSHOTS=DIR (``make screenshots``) the pages are saved there for docs/console.md.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_gateway_local.api_front.server import api_server_for
from batch_gateway_local.cli.up import _start_console
from batch_gateway_local.console.api import ConsoleApi
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

CHROMIUM = "/usr/bin/chromium"
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
SCRIPT_ID = "<script>alert('id')</script>"
SCRIPT_MESSAGE = "<script>alert('answer')</script> Is a late parcel a delivery issue?"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"),
]
sync_api = pytest.importorskip("playwright.sync_api")


class Console:
    """The stack, its API, the console and one browser page; screenshots where asked."""

    def __init__(self, gateway: LocalGateway, api: ConsoleApi, url: str, page: Any, shots: Path) -> None:
        self.gateway, self.api, self.url, self.page, self.shots = gateway, api, url, page, shots

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=str(self.shots / f"console-{name}.png"), full_page=full_page)

    def submit_api(self, count: int, prefix: str) -> str:
        items = [
            {"custom_id": f"{prefix}-{n:03d}", "user_message": f"Classify ticket {n}."} for n in range(count)
        ]
        spec = {"provider": "openai", "model": "gpt-4o-mini"}
        return str(self.api.submit(spec, items, f"console-test-{prefix}-{time.time_ns()}")["job_id"])

    def wait_status(self, *statuses: str, timeout: float = 60) -> str:
        status = self.page.locator("#job-status")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # htmx swaps #live every 2 s and reloads the page once the job has ended
            try:
                text = status.text_content(timeout=10_000) if status.count() else ""
            except sync_api.Error:  # the page was reloading
                text = ""
            if text in statuses and self.page.locator("#results").count():
                self.page.wait_for_load_state()
                return str(text)
            time.sleep(0.3)
        raise AssertionError(f"the page still shows {status.text_content()!r}")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with (
        LocalGateway(LocalOptions()) as gateway,
        api_server_for(gateway, port=0) as server,
        sync_api.sync_playwright() as playwright,
    ):
        ui = _start_console(server, "IAM", 0)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800}).new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        try:
            yield Console(gateway, ConsoleApi.connect(server.url), ui.url, page, shots)
        finally:
            browser.close()
            ui.stop()
        assert dialogs == [], "a script from the data ran in the page"


def test_submit_a_file_and_watch_it_complete(console: Console, tmp_path: Path) -> None:
    console.gateway.emulator.scenario = "ok"
    lines = [
        {"custom_id": SCRIPT_ID, "user_message": SCRIPT_MESSAGE},
        *(
            {"custom_id": f"ticket-{n:03d}", "user_message": f"Classify ticket {n}: charged twice."}
            for n in range(1, 12)
        ),
    ]
    upload = tmp_path / "tickets <b>.jsonl"
    upload.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    page = console.page
    page.goto(f"{console.url}/submit")
    page.set_input_files("#file", str(upload))
    page.fill("#model", "gpt-4o-mini")
    page.fill("#system_prompt", "Answer in one word. <i>not italic</i>")
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs/*")
    assert console.wait_status("completed") == "completed"
    assert page.locator("#outcomes").inner_text().count("12") == 1
    console.shot("job")

    # downloads: the console's results.jsonl is the API's, byte for byte
    with page.expect_download() as download:
        page.click("text=Download results.jsonl")
    job_id = page.url.rsplit("/", 1)[-1].split("?")[0].split("#")[0]
    assert job_id.startswith("tickets-"), job_id  # named after the uploaded file, as the CLI names it
    expected = b"".join(console.api.stream(console.api.results_url(job_id)))
    assert Path(download.value.path()).read_bytes() == expected
    assert download.value.suggested_filename == "results.jsonl"
    assert len(expected.splitlines()) == 12

    # a custom_id and an answer with <script> are shown as text, in the list and on the answer's page
    page.get_by_role("link", name=SCRIPT_ID).first.click()
    page.wait_for_selector("#custom-id")
    assert page.locator("#custom-id").text_content() == SCRIPT_ID
    assert "<script>" in (page.locator("#answer").text_content() or "")
    assert json.loads(page.locator("#raw").text_content() or "{}")["custom_id"] == SCRIPT_ID
    assert page.locator("main script").count() == 0
    console.shot("result")

    # the jobs list, wide and at phone width (nothing wider than the screen but the tables' scrollers)
    page.goto(f"{console.url}/jobs")
    assert page.locator(f"tr[data-job='{job_id}'] .status").text_content() == "completed"
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{console.url}/jobs/{job_id}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    console.shot("job-phone", full_page=False)
    page.locator("#results").scroll_into_view_if_needed()
    console.shot("results-phone", full_page=False)
    page.set_viewport_size({"width": 1100, "height": 800})


def test_invalid_lines_are_shown_with_line_numbers_and_nothing_is_sent(
    console: Console, tmp_path: Path
) -> None:
    before = len(console.api.jobs_page(None, 1000, None)["jobs"])
    upload = tmp_path / "mixed.jsonl"
    good = {"custom_id": "ok-1", "user_message": "Hello"}
    upload.write_text(
        json.dumps(good) + "\n\n" + json.dumps({"custom_id": "no-message"}) + "\n", encoding="utf-8"
    )
    page = console.page
    page.goto(f"{console.url}/submit")
    page.set_input_files("#file", str(upload))
    page.fill("#model", "gpt-4o-mini")
    page.click("button[type=submit]")
    problem = page.locator("#problem")
    problem.wait_for()
    rows = problem.locator("tbody tr")
    assert rows.count() >= 1
    first = rows.first.locator("td")
    assert first.nth(0).text_content() == "3"  # the file's line (line 2 is blank)
    assert first.nth(1).text_content() == "no-message"
    assert "nothing was started" in (problem.text_content() or "")
    assert page.locator("#model").input_value() == "gpt-4o-mini"  # the form keeps what was typed
    console.shot("submit-invalid")
    assert len(console.api.jobs_page(None, 1000, None)["jobs"]) == before


def _job_count(console: Console) -> int:
    return len(console.api.jobs_page(None, 1000, None)["jobs"])


def test_estimate_shows_the_summary_and_submits_nothing(console: Console, tmp_path: Path) -> None:
    before = _job_count(console)
    upload = tmp_path / "estimate.jsonl"
    lines = [
        json.dumps({"custom_id": "est-1", "user_message": "Classify: charged twice."}),
        "",
        json.dumps({"custom_id": "est-bad"}),  # file line 3 (line 2 is blank): no message
        json.dumps({"custom_id": "est-2", "user_message": "Classify: app crashes."}),
    ]
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = console.page
    page.goto(f"{console.url}/submit")
    page.set_input_files("#file", str(upload))
    page.fill("#model", "gpt-4o-mini")
    page.fill("#system_prompt", "Answer in one word.")
    page.click("button[value=estimate]")
    summary = page.locator("#estimate")
    summary.wait_for()
    assert page.locator("#estimate-requests").text_content() == "2"
    assert page.locator("#estimate-invalid").text_content() == "1"
    assert int(page.locator("#estimate-batches").text_content() or "0") >= 1
    assert int(page.locator("#estimate-tokens").text_content() or "0") > 0
    assert (page.locator("#estimate-cost").text_content() or "").startswith("$")
    error = page.locator("#estimate-errors tbody tr").first.locator("td")
    assert error.nth(0).text_content() == "3"  # the file's line, not the item's position
    assert "refuse" in (page.locator("#estimate-verdict").text_content() or "")  # on_invalid=reject
    assert "choose the file again" in (summary.text_content() or "").lower()
    assert page.locator("#model").input_value() == "gpt-4o-mini"  # the form keeps what was typed
    assert page.locator("#system_prompt").input_value() == "Answer in one word."
    assert _job_count(console) == before  # nothing was submitted
    page.goto(f"{console.url}/jobs")
    assert page.locator("tr[data-job^='estimate-']").count() == 0  # a submit would name it estimate-…


TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["billing", "bug", "other"]},
        "confidence": {"type": "number"},
        "tag": {"const": "<b>not bold</b>"},
    },
    "required": ["label", "confidence", "tag"],
}


def test_submit_with_a_response_schema_shows_the_parsed_answer(console: Console, tmp_path: Path) -> None:
    console.gateway.emulator.scenario = "ok"
    upload = tmp_path / "structured.jsonl"
    upload.write_text(
        "".join(
            json.dumps({"custom_id": f"st-{n}", "user_message": f"Classify ticket {n}."}) + "\n"
            for n in range(3)
        ),
        encoding="utf-8",
    )
    page = console.page
    page.goto(f"{console.url}/submit")
    page.set_input_files("#file", str(upload))
    page.fill("#model", "gpt-4o-mini")
    page.fill("#response_schema", json.dumps(TICKET_SCHEMA, indent=2))
    page.click("button[value=submit]")
    page.wait_for_url("**/jobs/*")
    assert console.wait_status("completed") == "completed"
    page.get_by_role("link", name="st-1").first.click()
    page.wait_for_selector("#parsed")
    parsed = json.loads(page.locator("#parsed").text_content() or "null")
    assert set(parsed) == {"label", "confidence", "tag"}
    assert parsed["label"] in ("billing", "bug", "other")
    assert isinstance(parsed["confidence"], int | float)
    assert parsed["tag"] == "<b>not bold</b>"  # shown as text
    assert page.locator("main b").count() == 0


def test_a_schema_that_is_not_json_is_refused_and_nothing_sent(console: Console, tmp_path: Path) -> None:
    before = _job_count(console)
    upload = tmp_path / "schema.jsonl"
    upload.write_text(json.dumps({"custom_id": "sj-1", "user_message": "Hi"}) + "\n", encoding="utf-8")
    page = console.page
    for schema, says in (("{label: enum}", "not JSON"), ('["a list"]', "JSON object")):
        page.goto(f"{console.url}/submit")
        page.set_input_files("#file", str(upload))
        page.fill("#model", "gpt-4o-mini")
        page.fill("#response_schema", schema)
        page.click("button[value=submit]")
        problem = page.locator("#problem")
        problem.wait_for()
        assert says in (problem.text_content() or "")
        assert "nothing was sent" in (problem.text_content() or "")
        assert page.locator("#response_schema").input_value() == schema  # kept for fixing
        assert page.locator("#model").input_value() == "gpt-4o-mini"
    assert _job_count(console) == before


def test_a_schema_the_api_refuses_is_shown_and_nothing_started(console: Console, tmp_path: Path) -> None:
    before = _job_count(console)
    upload = tmp_path / "strict.jsonl"
    upload.write_text(json.dumps({"custom_id": "sr-1", "user_message": "Hi"}) + "\n", encoding="utf-8")
    optional = {"type": "object", "properties": {"label": {"type": "string"}, "note": {"type": "string"}}}
    optional["required"] = ["label"]  # OpenAI's strict mode needs every property in required
    page = console.page
    for action in ("estimate", "submit"):
        page.goto(f"{console.url}/submit")
        page.set_input_files("#file", str(upload))
        page.fill("#model", "gpt-4o-mini")
        page.fill("#response_schema", json.dumps(optional))
        page.click(f"button[value={action}]")
        problem = page.locator("#problem")
        problem.wait_for()
        text = problem.text_content() or ""
        assert "'note'" in text, text
        assert "nothing was started" in text
        assert "response_schema" in (problem.locator("tbody").text_content() or "")
        assert page.locator("#estimate").count() == 0
    assert _job_count(console) == before


def test_item_errors_are_grouped_by_reason(console: Console) -> None:
    console.gateway.emulator.scenario = "item-errors"
    try:
        job_id = console.submit_api(20, "ie")
        console.page.goto(f"{console.url}/jobs/{job_id}")
        console.wait_status("completed", "partially_completed")
    finally:
        console.gateway.emulator.scenario = "ok"
    table = console.page.locator("table.errors tbody tr")
    assert table.count() == 1  # positions 3 and 13 fail for good; the retryable ones recover
    cells = table.first.locator("td")
    assert "item-errors scenario" in (cells.nth(0).text_content() or "")
    assert cells.nth(1).text_content() == "2"
    assert cells.nth(2).inner_text() == "ie-003, ie-013"
    console.shot("errors")

    # find one custom_id, then back to all of them
    page = console.page
    page.fill("#q", "ie-013")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=ie-013**")
    assert page.locator("table.results tbody tr").count() == 1
    assert "item-errors scenario" in page.locator("table.results tbody tr").inner_text()
    page.click("text=All results")
    assert page.locator("table.results tbody tr").count() == 20

    with console.page.expect_download() as download:
        console.page.click("text=Download errors.jsonl")
    rows = [json.loads(line) for line in io.BytesIO(Path(download.value.path()).read_bytes())]
    assert sorted(row["custom_id"] for row in rows) == ["ie-003", "ie-013"]
    assert all(not row["ok"] for row in rows)


def test_cancel_a_running_job_with_the_keyboard(console: Console) -> None:
    console.gateway.emulator.scenario = "slow"
    try:
        job_id = console.submit_api(5, "slow")
        page = console.page
        page.goto(f"{console.url}/jobs")  # the list while it runs, next to the jobs before it
        assert page.locator(f"tr[data-job='{job_id}'] .status").text_content() in ("pending", "in_progress")
        console.shot("jobs")
        page.goto(f"{console.url}/jobs/{job_id}")
        page.get_by_role("link", name="Cancel job…").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/jobs/{job_id}/cancel")
        console.shot("cancel")
        page.keyboard.press("Enter")  # the confirmation button has the focus
        page.wait_for_url(f"**/jobs/{job_id}")
        assert console.wait_status("cancelled") == "cancelled"
    finally:
        console.gateway.emulator.scenario = "ok"
    assert console.api.job(job_id)["status"] == "cancelled"
    console.page.goto(f"{console.url}/jobs")
    console.page.select_option("#status", "cancelled")
    console.page.click("text=Filter")
    console.page.wait_for_url("**status=cancelled**")
    shown = console.page.locator("table.jobs tbody tr")
    assert shown.count() == 1
    assert shown.first.get_attribute("data-job") == job_id


def _http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_posts_need_the_csrf_token_and_hosts_are_checked(console: Console) -> None:
    job_id = console.submit_api(1, "csrf")
    # a cross-site form post (no token, no cookie) is refused and cancels nothing
    status, _, body = _http(f"{console.url}/jobs/{job_id}/cancel", data=b"csrf=guess")
    assert status == 403
    assert b"security token" in body
    assert console.api.job(job_id)["cancel_requested"] is False
    # a page asked for under another host name (DNS rebinding) is refused
    status, _, _ = _http(f"{console.url}/jobs", headers={"Host": "attacker.example"})
    assert status == 400
    status, headers, body = _http(f"{console.url}/jobs/no-such-job")
    assert status == 404
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"Traceback" not in body
    status, _, _ = _http(f"{console.url}/jobs/{job_id}/download/other.txt")
    assert status == 404
