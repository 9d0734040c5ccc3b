#!/usr/bin/env bash
# Build the jobpulse-agent and jobpulse-collector packages, .deb and .rpm:
#
#   scripts/build-packages.sh [--release N] [--out DIR] [--formats deb,rpm]
#
# Each package is a self-contained Python environment under /opt/jobpulse/<agent|collector>/ (a venv of
# the distribution's python3.11 holding exactly the versions locked in uv.lock; nothing of the node's own
# Python packages is seen), the command symlinks in /opt/jobpulse/bin/, the systemd unit, example configs in
# /etc/jobpulse/ (configuration files the package manager keeps on upgrade) and, for the agent, the Slurm
# prolog/epilog scripts in /opt/jobpulse/slurm/. Compute nodes install the agent only: no web stack.
#
# Needs: python3.11 (the interpreter the packages run on), dpkg-deb (Debian) and rpmbuild (Debian's `rpm`
# package) for the formats asked for. The network is used only to fetch the locked wheels and the build
# backend when uv's cache does not have them yet. The version is jobpulse's (common/.../version.py); --release
# (default 1) numbers rebuilds of one version, so a higher release upgrades a lower one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RELEASE=1
OUT=$ROOT/dist/packages
FORMATS=deb,rpm
PYTHON=${JOBPULSE_PKG_PYTHON:-/usr/bin/python3.11}
while [ $# -gt 0 ]; do
  case "$1" in
    --release) RELEASE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --formats) FORMATS=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-packages: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$RELEASE" in ''|*[!0-9]*) echo "build-packages: --release must be a number, not '$RELEASE'" >&2; exit 2 ;; esac
[ -x "$PYTHON" ] || { echo "build-packages: $PYTHON not found (apt-get install python3.11, or set JOBPULSE_PKG_PYTHON)" >&2; exit 1; }
for fmt in ${FORMATS//,/ }; do
  case "$fmt" in
    deb) command -v dpkg-deb >/dev/null || { echo "build-packages: dpkg-deb not found" >&2; exit 1; } ;;
    rpm) command -v rpmbuild >/dev/null || { echo "build-packages: rpmbuild not found (apt-get install rpm)" >&2; exit 1; } ;;
    *) echo "build-packages: unknown format '$fmt' (deb, rpm)" >&2; exit 2 ;;
  esac
done

# uv (the same pinned one scripts/dev.sh uses) reads uv.lock; the .venv is not needed.
UV_VERSION=$(sed -n 's/^UV_VERSION=//p' scripts/dev.sh)
if [ ! -x .tools/bin/uv ] || ! .tools/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  python3 -m venv .tools 2>/dev/null || { python3 -m pip install --quiet virtualenv && python3 -m virtualenv -q .tools; }
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV=$ROOT/.tools/bin/uv

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' common/src/jobpulse/common/version.py)
SCHEMA=$(PYTHONPATH=collector/src:common/src "$PYTHON" -c \
  'from jobpulse.collector.store.migrations import LATEST; print(LATEST)')
PYVER=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
DEB_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
RPM_ARCH=$(uname -m)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobpulse-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
echo "build-packages: jobpulse $VERSION release $RELEASE (schema $SCHEMA, python $PYVER) -> $OUT"

# The three distributions as wheels, built from this tree.
for dist in common agent collector; do
  "$UV" build --quiet --package "jobpulse-$dist" --wheel --out-dir "$WORK/wheels" >/dev/null
done

stage() {  # stage PART: the installed tree of jobpulse-PART under $WORK/PART/root
  local part=$1 root=$WORK/$1/root venv
  venv=$root/opt/jobpulse/$part
  mkdir -p "$root/opt/jobpulse/bin"
  # Relocatable: the scripts find their interpreter next to themselves, so the venv made here works
  # once unpacked at /opt/jobpulse/<part> (pyvenv.cfg names only the system interpreter).
  "$UV" venv --quiet --relocatable --python "$PYTHON" --no-project "$venv"
  "$UV" export --quiet --frozen --package "jobpulse-$part" --no-dev --no-emit-workspace --no-annotate \
    >"$WORK/$part-requirements.txt"
  "$UV" pip install --quiet --python "$venv/bin/python" --link-mode copy --require-hashes \
    -r "$WORK/$part-requirements.txt"
  "$UV" pip install --quiet --python "$venv/bin/python" --link-mode copy --no-deps \
    "$WORK"/wheels/jobpulse_common-*.whl "$WORK"/wheels/jobpulse_"$part"-*.whl
  # The agent is the compute-node package: refuse to ship it with the web stack or the collector.
  if [ "$part" = agent ]; then
    for forbidden in litestar uvicorn jobpulse/collector; do
      if [ -e "$venv/lib/python$PYVER/site-packages/$forbidden" ]; then
        echo "build-packages: $forbidden ended up in the agent package" >&2; exit 1
      fi
    done
  fi
  rm -f "$venv"/bin/activate* "$venv"/bin/deactivate* "$venv"/bin/*.bat "$venv"/bin/*.ps1 "$venv"/bin/activate_this.py \
    "$venv/.gitignore" "$venv/CACHEDIR.TAG" "$venv/.lock"
  # direct_url.json records the build directory the wheels came from: not true once installed.
  find "$venv/lib" -name direct_url.json -path "*/jobpulse_*" -delete
  # Bytecode at install time would write into /opt (read-only to the services): compile now, for plain
  # runs (the hooks) and for -OO (the units set PYTHONOPTIMIZE=2), with the installed paths in it.
  "$venv/bin/python" -m compileall -q -j 0 -o 0 -o 2 -s "$root" -p / "$venv/lib" >/dev/null
  if grep -rIl --exclude=RECORD -- "$WORK" "$venv" >/dev/null 2>&1; then
    echo "build-packages: the staging path leaked into:" >&2
    grep -rIl --exclude=RECORD -- "$WORK" "$venv" | head -5 >&2
    exit 1
  fi
  install -D -m 0644 README.md "$venv/README.md"
  mkdir -p "$root/etc/jobpulse"
  install -m 0600 "packaging/etc/$part.toml" "$root/etc/jobpulse/$part.toml"
  install -D -m 0644 "systemd/jobpulse-$part.service" "$root/UNITDIR/jobpulse-$part.service"
  case "$part" in
    agent)
      ln -s ../agent/bin/jobpulse-agent "$root/opt/jobpulse/bin/jobpulse-agent"
      install -D -m 0755 packaging/slurm/prolog.d/50-jobpulse.sh "$root/opt/jobpulse/slurm/prolog.d/50-jobpulse.sh"
      install -D -m 0755 packaging/slurm/epilog.d/50-jobpulse.sh "$root/opt/jobpulse/slurm/epilog.d/50-jobpulse.sh"
      install -m 0644 packaging/slurm/slurm.conf.snippet "$root/opt/jobpulse/slurm/slurm.conf.snippet"
      ;;
    collector)
      ln -s ../collector/bin/jobpulse-collector "$root/opt/jobpulse/bin/jobpulse-collector"
      ln -s ../collector/bin/jobpulse "$root/opt/jobpulse/bin/jobpulse"
      # Slurm's MailProg (end-of-job mail with the job's report) runs `jobpulse mail`, a collector-side command.
      install -D -m 0755 packaging/slurm/mailprog.sh "$root/opt/jobpulse/slurm/mailprog.sh"
      mkdir -p "$root/var/lib/jobpulse-collector"
      ;;
  esac
}

# Maintainer scripts are written once (packaging/scripts) with @PLACEHOLDERS@ for what differs per build.
render() {  # render SRC DEST: @SCHEMA_CHECK@ becomes packaging/common/check-schema.sh, then the values
  awk -v inc=packaging/common/check-schema.sh \
    '$0 == "@SCHEMA_CHECK@" { while ((getline line < inc) > 0) print line; next } { print }' "$1" |
    sed -e "s|@VERSION@|$VERSION-$RELEASE|g" -e "s|@SCHEMA@|$SCHEMA|g" -e "s|@PYTHON@|$PYTHON|g" >"$2"
}

describe() {
  case "$1" in
    agent) echo "jobpulse node agent: per-job resource monitoring for Slurm (cgroups, GPUs, node)" ;;
    collector) echo "jobpulse collector: ingest, storage and the HTTP API of per-job resource monitoring" ;;
  esac
}

build_deb() {
  local part=$1 root=$WORK/$1/deb
  cp -a "$WORK/$part/root" "$root"
  mkdir -p "$root/lib/systemd/system" "$root/DEBIAN"
  mv "$root/UNITDIR/"* "$root/lib/systemd/system/" && rmdir "$root/UNITDIR"
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  {
    echo "Package: jobpulse-$part"
    echo "Version: $VERSION-$RELEASE"
    echo "Architecture: $DEB_ARCH"
    echo "Maintainer: jobpulse developers <jobpulse@localhost>"
    echo "Installed-Size: $size"
    echo "Depends: python$PYVER, adduser | passwd"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Homepage: https://github.com/jobpulse/jobpulse"
    echo "Description: $(describe "$part")"
    echo " Self-contained: the Python environment in /opt/jobpulse/$part holds every dependency"
    echo " at the version jobpulse was tested with. Settings: /etc/jobpulse/$part.toml."
  } >"$root/DEBIAN/control"
  echo "/etc/jobpulse/$part.toml" >"$root/DEBIAN/conffiles"
  for script in preinst postinst prerm postrm; do
    if [ -f "packaging/deb/$part.$script" ]; then
      render "packaging/deb/$part.$script" "$root/DEBIAN/$script"
      chmod 0755 "$root/DEBIAN/$script"
    fi
  done
  # Owned by root whoever builds (the collector's state directory is given to its user in postinst).
  local deb=$OUT/jobpulse-${part}_${VERSION}-${RELEASE}_${DEB_ARCH}.deb
  # gzip: fast to build on small CI machines, and every dpkg reads it.
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$deb" >/dev/null
  echo "built $deb"
}

build_rpm() {
  local part=$1 top=$WORK/$1/rpmbuild buildroot=$WORK/$1/rpmroot
  cp -a "$WORK/$part/root" "$buildroot"
  mkdir -p "$buildroot/usr/lib/systemd/system" "$top"/{SPECS,RPMS,BUILD,SOURCES,SRPMS}
  mv "$buildroot/UNITDIR/"* "$buildroot/usr/lib/systemd/system/" && rmdir "$buildroot/UNITDIR"
  render "packaging/rpm/jobpulse-$part.spec" "$top/SPECS/jobpulse-$part.spec"
  # Every file of the tree as a %files entry: the settings as %config(noreplace) with their modes (the
  # collector's readable by its group), the directories this package owns, the shared ones as %dir too.
  {
    (cd "$buildroot" && find . -mindepth 1 \( -type f -o -type l \) | sed 's|^\.||' | sort) | while read -r f; do
      case "$f" in
        /etc/jobpulse/agent.toml) echo "%config(noreplace) %attr(0600,root,root) $f" ;;
        /etc/jobpulse/collector.toml) echo "%config(noreplace) %attr(0640,root,jobpulse) $f" ;;
        *) echo "$f" ;;
      esac
    done
    echo "%dir /etc/jobpulse"
    echo "%dir /opt/jobpulse"
    echo "%dir /opt/jobpulse/bin"
    (cd "$buildroot" && find "./opt/jobpulse/$part" -type d | sed 's|^\.|%dir |' | sort)
    case "$part" in
      agent) (cd "$buildroot" && find ./opt/jobpulse/slurm -type d | sed 's|^\.|%dir |' | sort) ;;
      collector) echo "%dir /opt/jobpulse/slurm"; echo "%dir %attr(0700,jobpulse,jobpulse) /var/lib/jobpulse-collector" ;;
    esac
  } >"$top/files.list"
  # gzip: fast to build on small CI machines, and every rpm and dpkg reads it.
  rpmbuild --quiet -bb --nodeps --define "_binary_payload w6.gzdio" \
    --define "_topdir $top" --define "_rpmdir $top/RPMS" --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "jp_version $VERSION" --define "jp_release $RELEASE" --define "jp_python $PYTHON" \
    --define "jp_pyver $PYVER" --define "jp_files $top/files.list" --define "jp_staged $buildroot" \
    --target "$RPM_ARCH" "$top/SPECS/jobpulse-$part.spec" >"$WORK/rpmbuild-$part.log" 2>&1 || {
      tail -n 30 "$WORK/rpmbuild-$part.log" >&2; exit 1; }
  local rpm=$OUT/jobpulse-$part-$VERSION-$RELEASE.$RPM_ARCH.rpm
  mv "$top/RPMS/jobpulse-$part-$VERSION-$RELEASE.$RPM_ARCH.rpm" "$rpm"
  echo "built $rpm"
}

for part in agent collector; do
  stage "$part"
  for fmt in ${FORMATS//,/ }; do
    "build_$fmt" "$part"
  done
done
