# Refuse a downgrade (included into the collector's preinst / %pre by scripts/build-packages.sh).
# The database written by a newer collector has a schema this package's collector does not know: it would
# refuse to start on it, and nothing may write to it. So stop here, before any file is replaced, and say
# what to do. Reads the database's schema version (PRAGMA user_version) read-only, with the python3.11 the
# installed package already depends on; without it (a first install) there is no database to protect.
jobpulse_check_schema() {
  [ -x @PYTHON@ ] || return 0
  @PYTHON@ - @SCHEMA@ <<'PYEOF'
import sqlite3
import sys
import tomllib
from pathlib import Path

ours = int(sys.argv[1])
try:
    conf = tomllib.loads(Path("/etc/jobpulse/collector.toml").read_text())
except (OSError, ValueError):
    conf = {}
state = Path(conf.get("state_dir") or "/var/lib/jobpulse-collector")
db = Path(conf.get("database") or state / "jobpulse.db")
if not db.is_file():
    sys.exit(0)
try:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    theirs = int(con.execute("PRAGMA user_version").fetchone()[0])
    con.close()
except sqlite3.Error as exc:
    print(f"jobpulse-collector: cannot read the schema version of {db} ({exc}); going on", file=sys.stderr)
    sys.exit(0)
if theirs > ours:
    print(
        f"jobpulse-collector: refusing to install @VERSION@: the database {db} has schema version {theirs},\n"
        f"  newer than this collector understands ({ours}). A newer jobpulse-collector wrote it; this older one\n"
        "  would not start on it. Keep the newer package, or restore the backup you made before upgrading\n"
        "  (docs/operations.md, 'Upgrade and downgrade'). Nothing was changed.",
        file=sys.stderr,
    )
    sys.exit(1)
PYEOF
}
