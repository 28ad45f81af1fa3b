"""The console's routes: jobs, one job, one answer, downloads, cancel, submit; CSRF and headers.

Pages are server-rendered Jinja2 templates with autoescaping on, so every string from the API or
the user (custom_ids, answers, system prompts, file names) reaches the browser as text. htmx only
re-fetches the fragments of running jobs; every page also works as plain HTML. POSTs carry a CSRF
token (a random cookie, SameSite=Strict, echoed in a hidden field and compared in constant time),
the Host header must be one this server answers to (no DNS rebinding), and a strict CSP forbids
inline scripts and styles. Every call goes through ``console.api``; nothing here touches S3 or
DynamoDB.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from batch_gateway_local.console import views
from batch_gateway_local.console.api import ApiError, ConsoleApi
from batch_gateway_local.console.downloads import errors_download, raw_record, results_download
from batch_gateway_local.console.submit import estimate_post, submit_form, submit_post

HERE = Path(__file__).parent
CSRF_COOKIE = "bgc_csrf"
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RESULTS_PER_PAGE = 20
ERROR_ROWS_READ = 2_000  # failed rows read to group them by reason (the page says when there are more)
LIST_DETAILS = 20  # running jobs on a list page whose chunks are read for their progress
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters.update(when=views.when, duration=views.duration, cost=views.cost)
    env.globals.update(statuses=views.STATUSES, outcomes=views.OUTCOMES)
    return Jinja2Templates(env=env)


class Console:
    """The app's state: the API, the templates; one method per route."""

    def __init__(self, api: ConsoleApi) -> None:
        self.api = api
        self.templates = _templates()

    # ------------------------------------------------------------ rendering and CSRF
    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        context = {"csrf": token, "endpoint": self.api.endpoint, **context}
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        for header, value in SECURITY_HEADERS.items():
            response.headers[header] = value
        return response

    @staticmethod
    def check_csrf(request: Request, form: FormData) -> None:
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        sent = str(form.get("csrf") or "")
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise HTTPException(
                403, "the form's security token is missing or stale: reload the page and try again"
            )

    @staticmethod
    def job_id(request: Request) -> str:
        job_id = str(request.path_params["job_id"])
        if not JOB_ID.match(job_id):
            raise HTTPException(404, "no such job")
        return job_id

    # ------------------------------------------------------------ jobs
    async def jobs(self, request: Request) -> Response:
        return self.render(request, "jobs.html", await self._jobs_context(request))

    async def jobs_table(self, request: Request) -> Response:
        return self.render(request, "_jobs_table.html", await self._jobs_context(request))

    async def _jobs_context(self, request: Request) -> dict[str, Any]:
        status = request.query_params.get("status") or None
        if status not in (None, *views.STATUSES):
            status = None
        token = request.query_params.get("next_token") or None
        page = await run_in_threadpool(self.api.jobs_page, status, 25, token)
        jobs = page.get("jobs", [])
        running = [job for job in jobs if views.is_running(job)][:LIST_DETAILS]
        details = {job["job_id"]: await run_in_threadpool(self.api.job, job["job_id"]) for job in running}
        rows = [(job, views.progress(details.get(job["job_id"], job))) for job in jobs]
        return {
            "rows": rows,
            "status": status or "",
            "next_token": page.get("next_token"),
            "any_running": bool(running),
        }

    # ------------------------------------------------------------ one job
    async def job(self, request: Request) -> Response:
        job_id = self.job_id(request)
        job = await run_in_threadpool(self.api.job, job_id)
        context = {**self._live_context(job), **await self._results_context(request, job_id)}
        context["errors"], context["errors_more"] = await self._error_groups(job_id)
        return self.render(request, "job.html", context)

    async def job_live(self, request: Request) -> Response:
        job = await run_in_threadpool(self.api.job, self.job_id(request))
        response = self.render(request, "_job_live.html", self._live_context(job))
        if not views.is_running(job):
            response.headers["HX-Refresh"] = "true"  # the job ended: reload for its errors and results
        return response

    @staticmethod
    def _live_context(job: dict[str, Any]) -> dict[str, Any]:
        return {
            "job": job,
            "progress": views.progress(job),
            "history": views.history(job),
            "bars": views.outcome_bars(job.get("counts") or {}),
            "running": views.is_running(job),
        }

    async def _error_groups(self, job_id: str) -> tuple[list[views.ErrorGroup], bool]:
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while len(rows) < ERROR_ROWS_READ:
            page = await run_in_threadpool(self.api.results_page, job_id, 500, token, True)
            rows.extend(page.get("results", []))
            token = page.get("next_token")
            if not token:
                break
        return views.group_errors(rows), bool(token)

    async def _results_context(self, request: Request, job_id: str) -> dict[str, Any]:
        query = (request.query_params.get("q") or "").strip()
        token = request.query_params.get("next_token") or None
        if query:
            try:
                rows = [await run_in_threadpool(self.api.result, job_id, query)]
            except ApiError as exc:
                if exc.status != 404:
                    raise
                rows = []
            return {"rows": rows, "q": query, "results_next": None, "paged": bool(token)}
        page = await run_in_threadpool(self.api.results_page, job_id, RESULTS_PER_PAGE, token)
        return {
            "rows": page.get("results", []),
            "q": "",
            "results_next": page.get("next_token"),
            "paged": bool(token),
        }

    async def result(self, request: Request) -> Response:
        job_id = self.job_id(request)
        custom_id = str(request.path_params["custom_id"])
        row = await run_in_threadpool(self.api.result, job_id, custom_id)
        job = await run_in_threadpool(self.api.job, job_id)
        record = (
            await run_in_threadpool(raw_record, self.api, job, custom_id) if job.get("results_uri") else None
        )
        context = {"job": job, "row": row, **views.answer_lines(record, row)}
        return self.render(request, "result.html", context)

    # ------------------------------------------------------------ downloads and cancel
    async def download(self, request: Request) -> Response:
        job_id = self.job_id(request)
        name = request.path_params["name"]
        if name == "results.jsonl":
            return await run_in_threadpool(results_download, self.api, job_id)
        if name == "errors.jsonl":
            return await run_in_threadpool(errors_download, self.api, job_id)
        raise HTTPException(404, "no such download")

    async def cancel_confirm(self, request: Request) -> Response:
        job = await run_in_threadpool(self.api.job, self.job_id(request))
        return self.render(request, "cancel.html", {"job": job})

    async def cancel(self, request: Request) -> Response:
        job_id = self.job_id(request)
        self.check_csrf(request, await request.form())
        await run_in_threadpool(self.api.cancel, job_id)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    # ------------------------------------------------------------ submit
    async def submit_page(self, request: Request) -> Response:
        return self.render(request, "submit.html", submit_form())

    async def submit(self, request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=20)
        self.check_csrf(request, form)
        if form.get("action") == "estimate":  # the same form's Estimate button: nothing is submitted
            estimated, context = await estimate_post(self.api, form)
            return self.render(request, "submit.html", context, status=200 if estimated else 422)
        job_id, context = await submit_post(self.api, form)
        if job_id is not None:
            return RedirectResponse(f"/jobs/{job_id}", status_code=303)
        return self.render(request, "submit.html", context, status=422)

    # ------------------------------------------------------------ errors
    async def api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        status = exc.status if 400 <= exc.status < 500 else 502
        message = exc.message if exc.status else f"the API is unreachable: {exc.message}"
        return self.render(request, "error.html", {"status": status, "message": message}, status=status)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.render(
            request, "error.html", {"status": exc.status_code, "message": exc.detail}, exc.status_code
        )


async def _home(request: Request) -> Response:
    return RedirectResponse("/jobs", status_code=303)


def create_app(api: ConsoleApi, allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Starlette:
    console = Console(api)
    routes = [
        Route("/", _home),
        Route("/jobs", console.jobs),
        Route("/jobs/table", console.jobs_table),
        Route("/jobs/{job_id}", console.job),
        Route("/jobs/{job_id}/live", console.job_live),
        Route("/jobs/{job_id}/results/{custom_id:path}", console.result),
        Route("/jobs/{job_id}/download/{name:str}", console.download),
        Route("/jobs/{job_id}/cancel", console.cancel_confirm, methods=["GET"]),
        Route("/jobs/{job_id}/cancel", console.cancel, methods=["POST"]),
        Route("/submit", console.submit_page, methods=["GET"]),
        Route("/submit", console.submit, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
        exception_handlers={ApiError: console.api_error, HTTPException: console.http_error},
    )
