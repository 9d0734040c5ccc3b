"""A headless Chromium page (Debian's chromium, driven by Playwright) that may reach only the collector
under test: every request elsewhere is aborted and recorded, so a page that would need the internet (a
CDN, a font service) fails its test. Shared by the web interface's browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def local_page() -> Iterator[tuple[Any, list[str], list[str]]]:
    """(the page, its uncaught page errors, the outside URLs it tried)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        outside: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def only_local(route: Any) -> None:
            if httpx.URL(route.request.url).host != "127.0.0.1":
                outside.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", only_local)
        try:
            yield page, errors, outside
        finally:
            browser.close()
