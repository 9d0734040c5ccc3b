#!/usr/bin/env bash
# Re-create collector/src/jobpulse/collector/static/swagger-ui/ from the npm registry's swagger-ui-dist tarball.
#
#   scripts/vendor-swagger-ui.sh            fetch, check the pinned SHA-256, copy the files the /docs page uses
#   scripts/vendor-swagger-ui.sh --check    verify the committed files against SOURCE.json (no network; CI runs it)
#
# The collector serves /docs from these files so that the API docs work on a cluster's offline network.
# The version is the one Litestar's SwaggerRenderPlugin is tested with (litestar/openapi/plugins.py).
set -euo pipefail
VERSION=5.18.2
SHA256=8c87031bfd483b8e0d835faf0d09d82464642ac41d674ffca44efc22bd0a9c24
FILES=(swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css favicon-32x32.png LICENSE NOTICE)
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=$REPO/collector/src/jobpulse/collector/static/swagger-ui

if [ "${1:-}" = --check ]; then
  python3 - "$DEST" <<'PY'
import hashlib, json, pathlib, sys
dest = pathlib.Path(sys.argv[1])
source = json.loads((dest / "SOURCE.json").read_text())
bad = [name for name, digest in source["files"].items()
       if hashlib.sha256((dest / name).read_bytes()).hexdigest() != digest]
extra = sorted({p.name for p in dest.iterdir()} - set(source["files"]) - {"SOURCE.json"})
if bad or extra:
    sys.exit(f"vendor-swagger-ui: changed {bad}, unexpected {extra}: re-run scripts/vendor-swagger-ui.sh")
print(f"vendor-swagger-ui: {len(source['files'])} files match swagger-ui-dist {source['version']}")
PY
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url="https://registry.npmjs.org/swagger-ui-dist/-/swagger-ui-dist-$VERSION.tgz"
curl -fsSL "$url" -o "$work/dist.tgz"
echo "$SHA256  $work/dist.tgz" | sha256sum -c --quiet - || { echo "vendor-swagger-ui: $url is not the pinned tarball" >&2; exit 1; }
tar xzf "$work/dist.tgz" -C "$work"
rm -rf "$DEST" && mkdir -p "$DEST"
for f in "${FILES[@]}"; do cp "$work/package/$f" "$DEST/$f"; done
python3 - "$DEST" "$VERSION" "$url" "$SHA256" <<'PY'
import hashlib, json, pathlib, sys
dest, version, url, sha = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(dest.iterdir())}
doc = {"package": "swagger-ui-dist", "version": version, "license": "Apache-2.0", "tarball": url,
       "tarball_sha256": sha, "files": files}
(dest / "SOURCE.json").write_text(json.dumps(doc, indent=2) + "\n")
PY
echo "vendor-swagger-ui: swagger-ui-dist $VERSION in $DEST"
