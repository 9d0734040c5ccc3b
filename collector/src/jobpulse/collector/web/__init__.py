"""The web interface: one page at ``/ui/`` that draws jobs from the collector's own JSON API.

The page is static (``static/ui/``: HTML, one ES module, CSS) and talks to the same routes as every other
client, with the session cookie ``POST /api/login`` sets, so it needs no server-side rendering and no rules
of its own: what a user may see is what the API lets them see. Charts are uPlot (``static/uplot``, pinned
and checksummed by ``scripts/vendor-web-asset.sh``). Nothing is loaded from another host, and there is
nothing to build: the files are served as they are in the repository.
"""
