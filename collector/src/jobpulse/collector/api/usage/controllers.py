"""Seed 000's routes (usage history) and what its real clients also call: parse, call UsageService, map.

Who may do what: ``POST /api/data/ingest`` takes an API key of the ``ingest`` role (a service
principal's; admins pass every role check); the dashboard and report routes need a person's login or
key (role ``user``) and answer a user with their own jobs only; health and version answer anyone, as
the exporter checks health before it sends its key.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from jobpulse.collector.api.common import same_site_target
from jobpulse.collector.api.usage import mapping
from jobpulse.collector.api.usage.schemas import FilterBody, IngestBody
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.auth.security import accounts_of
from jobpulse.collector.domain.errors import InvalidInput, NotFound, Unauthorized
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.usage import UsageFilter
from jobpulse.collector.services.usage import UsageService, report_window
from jobpulse.common.version import __version__
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Redirect

_READ = [requires(Role.USER)]


def _service(request: Request[Any, Any, Any]) -> UsageService:
    service: UsageService = request.app.state.usage
    return service


def parse_day(value: str | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidInput(field, f"{value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _filter(
    hostname: str | None,
    start: str | None,
    end: str | None,
    body: FilterBody | None = None,
) -> UsageFilter:
    since, until = parse_day(start, "start_date"), parse_day(end, "end_date")
    if since and until and until < since:
        raise InvalidInput("end_date", "is before start_date")
    b = body
    return UsageFilter(
        cluster=hostname or None,
        since=since,
        until=until,
        partitions=tuple(b.partitions or ()) if b else (),
        accounts=tuple(b.accounts or ()) if b else (),
        users=tuple(b.users or ()) if b else (),
        qos=tuple(b.qos or ()) if b else (),
        states=tuple(b.states or ()) if b else (),
    )


class UsageIngestController(Controller):
    tags = ["usage history"]

    @post(
        "/api/data/ingest",
        operation_id="usageIngest",
        guards=[requires(Role.INGEST)],
        status_code=200,
        summary="Store sacct accounting records of a cluster (X-API-Key of the ingest role); idempotent per job",
        description=(
            "The whole request is checked first: a bad record answers 400 naming jobs[i].Field and nothing "
            "of the request is stored. A job already stored with the same figures is left as it is."
        ),
    )
    async def ingest(self, request: Request[Any, Any, Any], data: JSONBody[IngestBody]) -> dict[str, Any]:
        result = await _service(request).ingest(data.hostname, data.jobs)
        return {
            "message": f"Ingested {result.received} jobs for cluster {result.cluster} "
            f"({result.new} new, {result.changed} updated, {result.unchanged} unchanged)",
            "hostname": result.cluster,
            "received": result.received,
            "new": result.new,
            "updated": result.changed,
            "unchanged": result.unchanged,
        }

    @post(
        "/api/agent/exchange-deploy-key",
        operation_id="usageExchangeDeployKey",
        opt={"exclude_from_auth": True},
        summary="Not implemented: jobpulse has no deploy keys (answers 501)",
    )
    async def exchange_deploy_key(self) -> Response[dict[str, str]]:
        return Response(
            {
                "detail": "jobpulse has no deploy keys: an admin creates an ingest key with "
                "'jobpulse-collector create-api-key --role ingest --service NAME' and puts it in the exporter's "
                "config as api_key"
            },
            status_code=501,
        )


class DashboardController(Controller):
    path = "/api/dashboard"
    tags = ["usage history"]

    @get(
        "/health",
        operation_id="usageHealth",
        opt={"exclude_from_auth": True},
        summary="Health of the usage API",
    )
    async def health(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        clusters = await _service(request).clusters()
        return {
            "status": "healthy",
            "timestamp": datetime.now(UTC).isoformat(),
            "data_loaded": bool(clusters),
            "hostnames": [c for c, _, _ in clusters],
        }

    @get("/version", operation_id="usageVersion", opt={"exclude_from_auth": True}, summary="Server version")
    async def version(self) -> dict[str, str]:
        return {"version": __version__, "server": "jobpulse"}

    @get(
        "/metadata",
        operation_id="usageMetadata",
        guards=_READ,
        summary="Clusters, filter values, date ranges",
    )
    async def metadata(
        self,
        request: Request[Any, Any, Any],
        hostname: Annotated[str | None, QueryParameter(max_length=128)] = None,
        start_date: Annotated[str | None, QueryParameter(max_length=40)] = None,
        end_date: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> dict[str, Any]:
        service, principal = _service(request), principal_of(request)
        clusters = [c for c in await service.clusters() if hostname in (None, "", c[0])]
        out: dict[str, Any] = {
            "hostnames": [c for c, _, _ in clusters],
            "date_ranges": {c: {"min_date": str(a), "max_date": str(b)} for c, a, b in clusters},
        }
        for key in ("partitions", "accounts", "users", "qos", "states"):
            out[key] = {}
        for cluster, _, _ in clusters:
            dims = await service.dimensions(principal, _filter(cluster, start_date, end_date))
            out["partitions"][cluster] = dims["partition"]
            out["accounts"][cluster] = dims["account"]
            out["users"][cluster] = dims["user_name"]
            out["qos"][cluster] = dims["qos"]
            out["states"][cluster] = dims["state"]
        return out

    @post(
        "/filter",
        operation_id="usageFilter",
        guards=_READ,
        status_code=200,
        summary="Filtered jobs and totals",
    )
    async def filter(self, request: Request[Any, Any, Any], data: JSONBody[FilterBody]) -> dict[str, Any]:
        service, principal = _service(request), principal_of(request)
        f = _filter(data.hostname, data.start_date, data.end_date, data)
        totals = await service.totals(principal, f)
        rows = await service.jobs(principal, f, data.limit, data.offset)
        return {**mapping.summary(totals), "data": [mapping.job_record(r) for r in rows]}

    @post("/charts", operation_id="usageCharts", guards=_READ, status_code=200, summary="Aggregated charts")
    async def charts(self, request: Request[Any, Any, Any], data: JSONBody[FilterBody]) -> dict[str, Any]:
        f = _filter(data.hostname, data.start_date, data.end_date, data)
        board = await _service(request).dashboard(
            principal_of(request),
            f,
            data.period_type,
            charts=True,
            color_by=data.color_by,
            complete_periods_only=data.complete_periods_only,
        )
        return mapping.charts(board, data.account_segments, data.normalize_node_usage)

    @get("/stats/{hostname:str}", operation_id="usageStats", guards=_READ, summary="Totals of one cluster")
    async def stats(
        self,
        request: Request[Any, Any, Any],
        hostname: FromPath[str],
        start_date: Annotated[str | None, QueryParameter(max_length=40)] = None,
        end_date: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> dict[str, Any]:
        service, principal = _service(request), principal_of(request)
        if hostname not in {c for c, _, _ in await service.clusters()}:
            raise NotFound(f"cluster {hostname[:128]!r} has no usage records")
        f = _filter(hostname, start_date, end_date)
        totals = await service.totals(principal, f)
        partitions = await service.grouped(principal, f, "partition", users=False)
        eff = await service.efficiency(principal, f)
        return {
            "hostname": hostname,
            **mapping.summary(totals),
            "partitions": partitions.keys,
            "avg_waiting_time_hours": round((totals.wait_mean_s or 0) / 3600, 3),
            "max_waiting_time_hours": round((totals.wait_max_s or 0) / 3600, 3),
            "efficiency": {
                "monitored_jobs": eff.monitored_jobs,
                "cpu_efficiency": eff.cpu_efficiency_mean,
                "gpu_util_mean_percent": eff.gpu_util_mean,
            },
        }


async def _report(
    request: Request[Any, Any, Any],
    hostname: str,
    kind: str,
    year: Annotated[int, QueryParameter()],
    month: int | None,
    quarter: int | None,
) -> dict[str, Any]:
    first, last, label = report_window(kind, year, month, quarter)
    service, principal = _service(request), principal_of(request)
    f = UsageFilter(cluster=hostname, since=first, until=last)
    totals = await service.totals(principal, f)
    days = await service.grouped(principal, f, "period:day")
    states = await service.grouped(principal, f, "state")
    completed = sum(j for s, j in zip(states.keys, states.jobs, strict=True) if s == "COMPLETED")
    failed = sum(
        j
        for s, j in zip(states.keys, states.jobs, strict=True)
        if s in ("FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT")
    )
    durations = [m * j for m, j in zip(days.duration_mean_s, days.jobs, strict=True)]
    return {
        "hostname": hostname,
        "report_type": kind,
        "period": {"label": label, "start_date": str(first), "end_date": str(last)},
        "summary": {
            **mapping.summary(totals),
            "avg_job_duration_hours": round(sum(durations) / totals.jobs / 3600, 3) if totals.jobs else 0,
            "median_job_duration_hours": mapping.quantile_hours(days.duration_bins, 0.5),
            "avg_waiting_time_hours": round((totals.wait_mean_s or 0) / 3600, 3),
            "median_waiting_time_hours": mapping.quantile_hours(days.wait_bins, 0.5),
            "completed_jobs": completed,
            "failed_jobs": failed,
            "success_rate": round(100 * completed / totals.jobs, 1) if totals.jobs else 0,
        },
        "job_duration_stats": mapping.distribution_hours(days.duration_bins, days.duration_mean_s, days.jobs),
        "waiting_time_stats": mapping.distribution_hours(days.wait_bins, days.wait_mean_s, days.jobs),
        "comparison": None,
        "timeline": [
            {"date": d["day"], **{k: v for k, v in d.items() if k != "day"}}
            for d in mapping.rows(days, "day")
        ],
        "by_account": mapping.rows(await service.grouped(principal, f, "account"), "account"),
        "by_user": mapping.rows(await service.grouped(principal, f, "user_name"), "user"),
        "by_partition": mapping.rows(await service.grouped(principal, f, "partition"), "partition"),
        "by_state": mapping.rows(states, "state"),
    }


class ReportsController(Controller):
    path = "/api/reports"
    tags = ["usage history"]

    @get("/preview", operation_id="usageReportPreview", guards=_READ, summary="A usage report as JSON")
    async def preview(
        self,
        request: Request[Any, Any, Any],
        hostname: Annotated[str, QueryParameter(max_length=128)],
        year: Annotated[int, QueryParameter()],
        report_type: Annotated[str, QueryParameter(name="type", max_length=16)] = "monthly",
        month: Annotated[int | None, QueryParameter()] = None,
        quarter: Annotated[int | None, QueryParameter()] = None,
    ) -> dict[str, Any]:
        return await _report(request, hostname, report_type, year, month, quarter)

    @get("/generate", operation_id="usageReportGenerate", guards=_READ, summary="A usage report: json or csv")
    async def generate(
        self,
        request: Request[Any, Any, Any],
        hostname: Annotated[str, QueryParameter(max_length=128)],
        year: Annotated[int, QueryParameter()],
        report_type: Annotated[str, QueryParameter(name="type", max_length=16)] = "monthly",
        month: Annotated[int | None, QueryParameter()] = None,
        quarter: Annotated[int | None, QueryParameter()] = None,
        format: Annotated[str, QueryParameter(max_length=8)] = "json",
    ) -> Response[Any]:
        if format == "pdf":
            return Response(
                {"detail": "PDF reports are not implemented; use format=json or csv"}, status_code=501
            )
        if format not in ("json", "csv"):
            raise InvalidInput("format", "must be json or csv")
        report = await _report(request, hostname, report_type, year, month, quarter)
        label = report["period"]["label"]
        name = f"usage-{hostname}-{label}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "json":
            return Response(report, headers=headers)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["section", "key", "jobs", "cpu_hours", "gpu_hours", "users"])
        s = report["summary"]
        writer.writerow(
            [
                "total",
                label,
                s["total_jobs"],
                s["total_cpu_hours"],
                s["total_gpu_hours"],
                s["total_users"],
            ]
        )
        for section, key in (
            ("timeline", "date"),
            ("by_account", "account"),
            ("by_user", "user"),
            ("by_partition", "partition"),
            ("by_state", "state"),
        ):
            for row in report[section]:
                writer.writerow(
                    [section, row[key], row["jobs"], row["cpu_hours"], row["gpu_hours"], row["users"]]
                )
        return Response(out.getvalue(), media_type="text/csv", headers=headers)


# -- the front end's login: GET /saml/me, /saml/login -------------------------------------------------------
_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>jobpulse login</title>
<style>body{{font-family:sans-serif;max-width:22rem;margin:4rem auto}}input{{display:block;width:100%;margin:.4rem 0 1rem}}
.err{{color:#b00}}</style></head><body><h1>jobpulse</h1><p>Sign in to the usage dashboard.</p>{error}
<form method="post" action="/saml/login"><input type="hidden" name="redirect_to" value="{target}">
<label>User <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>{oidc}</body></html>"""


def _login_page(target: str, error: str = "", oidc: bool = False) -> str:
    return _LOGIN_PAGE.format(
        target=html.escape(target),
        error=f'<p class="err">{html.escape(error)}</p>' if error else "",
        oidc=(
            f'<p><a href="/auth/oauth/login?redirect_to={html.escape(quote(target, safe=""))}">'
            "Sign in with your organisation</a></p>"
            if oidc
            else ""
        ),
    )


class SamlController(Controller):
    """The dashboard's identity routes. jobpulse speaks no SAML: ``/saml/me`` answers for whatever login
    the browser has (local or OIDC session, or a key), and ``/saml/login`` is jobpulse's own login."""

    path = "/saml"
    tags = ["usage history"]

    @get("/me", operation_id="usageMe", summary="The caller's identity (401 when not logged in)")
    async def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        principal: Principal = principal_of(request)
        user = (
            await accounts_of(request).store.get_user(principal.username)
            if principal.via == "session"
            else None
        )
        return {
            "username": principal.username,
            "email": user.email if user is not None else "",
            "is_admin": principal.is_admin,
            "roles": sorted(principal.roles),
        }

    @get(
        "/login",
        operation_id="usageLoginPage",
        opt={"exclude_from_auth": True},
        media_type=MediaType.HTML,
        summary="jobpulse's login for the dashboard; back to redirect_to (same site only) afterwards",
    )
    async def login_page(
        self,
        request: Request[Any, Any, Any],
        redirect_to: Annotated[str | None, QueryParameter(max_length=2048)] = None,
    ) -> str:
        target = same_site_target(request, redirect_to)
        return _login_page(target, oidc=request.app.state.oidc is not None)

    @post(
        "/login",
        operation_id="usageLogin",
        opt={"exclude_from_auth": True, "strict_rate_limit": True},
        media_type=MediaType.HTML,
        status_code=303,
        summary="Log in (form: username, password, redirect_to); sets the session cookie",
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        from jobpulse.collector.api.jobmon.auth import start_session

        target = same_site_target(request, data.get("redirect_to"))
        username, password = data.get("username", ""), data.get("password", "")
        client = request.client.host if request.client else ""
        try:
            if not username or not password or len(username) > 256 or len(password) > 1024:
                raise Unauthorized("user name and password are required")
            user = await accounts_of(request).login(username, password, client)
        except Unauthorized as exc:
            page = _login_page(target, exc.message, oidc=request.app.state.oidc is not None)
            return Response(page, status_code=401, media_type=MediaType.HTML)
        _, cookie = await start_session(request, username, list(user.roles))
        return Redirect(target, status_code=303, cookies=[cookie])
