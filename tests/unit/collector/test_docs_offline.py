"""The API docs at /docs work on an offline network: every file the page loads is the collector's own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from litestar.testing import AsyncTestClient

REPO = Path(__file__).resolve().parents[3]
STATIC = REPO / "collector" / "src" / "jobpulse" / "collector" / "static" / "swagger-ui"


async def test_docs_page_loads_only_the_collectors_own_files(fx_client: AsyncTestClient) -> None:
    page = await fx_client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [u for u in urls if "//" in u], urls  # no CDN, no other host
    assert {Path(u).name for u in urls} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for url in urls:
        asset = await fx_client.get(url)  # public like /docs: no credentials sent
        assert asset.status_code == 200, url
        assert asset.content == (STATIC / Path(url).name).read_bytes()
    script = await fx_client.get("/docs/assets/swagger-ui/swagger-ui-bundle.js")
    assert (
        "javascript" in script.headers["content-type"] and "max-age=86400" in script.headers["cache-control"]
    )


async def test_assets_route_serves_nothing_outside_its_folder(fx_client: AsyncTestClient) -> None:
    for path in (
        "/docs/assets/swagger-ui/../../httpconf.py",
        "/docs/assets/%2e%2e/httpconf.py",
        "/docs/assets/nope.js",
    ):
        response = await fx_client.get(path)
        assert response.status_code in (400, 404), path
        assert b"def " not in response.content


def test_vendored_web_assets_match_their_pinned_sources() -> None:
    """The committed copies (Swagger UI, uPlot) are exactly the pinned releases' files (scripts/vendor-web-asset.sh)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "vendor-web-asset.sh"), "--check-all"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
