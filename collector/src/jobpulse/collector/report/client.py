"""Where the report reads a job from: the collector's URL and a credential, and the one request it makes.

Settings, first found wins: the command line, the environment (``JOBPULSE_URL``, ``JOBPULSE_API_KEY``,
``JOBPULSE_TOKEN``), ``$XDG_CONFIG_HOME/jobpulse/client.toml`` (``~/.config``), ``/etc/jobpulse/client.toml``
(keys ``url``, ``api_key``, ``token``). A site puts the URL in ``/etc``; each user keeps their own key
(``jobpulse-collector create-api-key --role user --owner USER``) in their own file, readable by them only.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8100"
TIMEOUT_S = 10.0  # a report in a MailProg must not hold the mail up for long


class ReportError(Exception):
    """Why there is no report, in words for the person who asked (and an exit code)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ClientSettings:
    url: str
    api_key: str = ""
    token: str = ""

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def config_files() -> list[Path]:
    """The client config files, most specific first."""
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(home) / "jobpulse" / "client.toml", Path("/etc/jobpulse/client.toml")]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReportError(f"cannot read {path}: {exc}", 2) from exc
    unknown = set(data) - {"url", "api_key", "token"}
    if unknown:
        raise ReportError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} (url, api_key, token)", 2)
    return data


def load_settings(url: str | None = None, files: list[Path] | None = None) -> ClientSettings:
    """The settings as the module docstring orders them."""
    found: dict[str, str] = {}
    for path in reversed(files if files is not None else config_files()):
        found.update({k: str(v) for k, v in _read_toml(path).items()})
    for key in ("url", "api_key", "token"):
        value = os.environ.get(f"JOBPULSE_{key.upper()}")
        if value:
            found[key] = value
    if url:
        found["url"] = url
    return ClientSettings(
        found.get("url", DEFAULT_URL).rstrip("/"), found.get("api_key", ""), found.get("token", "")
    )


def fetch_job(settings: ClientSettings, job: str, wait_s: float = 0.0) -> dict[str, Any]:
    """The job's page as the API serves it (metadata, summary, steps); ReportError says why not. With
    ``wait_s``, asked again every few seconds until the page has the job's summary (computed about a
    minute after a job ends) or the time is up."""
    deadline = time.monotonic() + wait_s
    while True:
        page = _fetch_once(settings, job)
        if page.get("Summary") or time.monotonic() >= deadline:
            return page
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))


def _fetch_once(settings: ClientSettings, job: str) -> dict[str, Any]:
    try:
        response = httpx.get(
            f"{settings.url}/api/job/{job}",
            params={"raw": "false"},
            headers={**settings.headers(), "Accept": "application/json"},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ReportError(f"cannot reach the jobpulse collector at {settings.url}: {exc}", 3) from exc
    if response.status_code in (401, 403):
        how = "no credential given" if not settings.headers() else "the credential was refused"
        raise ReportError(
            f"not allowed to read job {job} from {settings.url} ({how}): set JOBPULSE_API_KEY or api_key "
            "in ~/.config/jobpulse/client.toml",
            2,
        )
    if response.status_code == 404:
        raise ReportError(f"no job {job} that you may see at {settings.url}", 1)
    if response.status_code == 400:
        raise ReportError(f"job id {job!r} refused: {_detail(response)}", 2)
    if response.status_code != 200:
        raise ReportError(f"the collector answered {response.status_code}: {_detail(response)}", 3)
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise ReportError(f"the collector's answer is not JSON: {exc}", 3) from exc
    return body


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or response.text[:200])
