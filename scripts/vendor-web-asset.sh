#!/usr/bin/env bash
# Re-create a pinned third-party web asset under collector/src/jobpulse/collector/static/<name>/ from the npm
# registry's tarball, or check the committed copy.
#
#   scripts/vendor-web-asset.sh NAME            fetch, check the pinned SHA-256, copy the files the pages use
#   scripts/vendor-web-asset.sh NAME --check    verify the committed files against SOURCE.json (no network)
#   scripts/vendor-web-asset.sh --check-all     every asset (the test suite runs this)
#
# NAME: swagger-ui (the API docs at /docs; the release Litestar's SwaggerRenderPlugin is tested with) or
# uplot (the charts of the web interface). The collector serves these itself: clusters are often offline.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=(swagger-ui uplot)
pin() {  # pin NAME: PACKAGE VERSION SHA256 SUBDIR FILES...
  case "$1" in
    swagger-ui) PACKAGE=swagger-ui-dist VERSION=5.18.2 SHA256=8c87031bfd483b8e0d835faf0d09d82464642ac41d674ffca44efc22bd0a9c24 SUBDIR=.
      FILES=(swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css favicon-32x32.png LICENSE NOTICE) ;;
    uplot) PACKAGE=uplot VERSION=1.6.31 SHA256=015d4be9095072922bc31d8c63f93bc1b7cd5b27d14d17a1708ff76775f9eb90 SUBDIR=.
      FILES=(dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE) ;;
    *) echo "vendor-web-asset: unknown asset '$1' (${ASSETS[*]})" >&2; exit 2 ;;
  esac
  DEST=$REPO/collector/src/jobpulse/collector/static/$1
}

check() {
  pin "$1"
  python3 - "$DEST" "$1" <<'PY'
import hashlib, json, pathlib, sys
dest, name = pathlib.Path(sys.argv[1]), sys.argv[2]
source = json.loads((dest / "SOURCE.json").read_text())
bad = [f for f, digest in source["files"].items() if hashlib.sha256((dest / f).read_bytes()).hexdigest() != digest]
extra = sorted({p.name for p in dest.iterdir()} - set(source["files"]) - {"SOURCE.json"})
if bad or extra:
    sys.exit(f"vendor-web-asset: {name}: changed {bad}, unexpected {extra}: re-run scripts/vendor-web-asset.sh {name}")
print(f"vendor-web-asset: {name}: {len(source['files'])} files match {source['package']} {source['version']}")
PY
}

if [ "${1:-}" = --check-all ]; then
  for a in "${ASSETS[@]}"; do check "$a"; done
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 NAME [--check] | --check-all" >&2; exit 2; }
if [ "${2:-}" = --check ]; then
  check "$1"
  exit 0
fi
pin "$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url="https://registry.npmjs.org/$PACKAGE/-/$PACKAGE-$VERSION.tgz"
curl -fsSL "$url" -o "$work/dist.tgz"
echo "$SHA256  $work/dist.tgz" | sha256sum -c --quiet - || { echo "vendor-web-asset: $url is not the pinned tarball" >&2; exit 1; }
tar xzf "$work/dist.tgz" -C "$work"
rm -rf "$DEST" && mkdir -p "$DEST"
for f in "${FILES[@]}"; do cp "$work/package/$f" "$DEST/$(basename "$f")"; done
python3 - "$DEST" "$PACKAGE" "$VERSION" "$url" "$SHA256" <<'PY'
import hashlib, json, pathlib, sys
dest, package, version, url, sha = pathlib.Path(sys.argv[1]), *sys.argv[2:]
files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(dest.iterdir())}
doc = {"package": package, "version": version, "tarball": url, "tarball_sha256": sha, "files": files}
(dest / "SOURCE.json").write_text(json.dumps(doc, indent=2) + "\n")
PY
echo "vendor-web-asset: $PACKAGE $VERSION in $DEST"
