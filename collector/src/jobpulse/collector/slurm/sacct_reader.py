"""Which sacct output the backfill reads: ``--json`` where this Slurm has it, else ``--parsable2``.

``sacct --json`` arrived in Slurm 21.08; an older sacct answers "unrecognized option '--json'". Both
outputs give the same records (slurm/accounting.py, slurm/accounting_json.py), so the choice is only
about which one this sacct can print: ``auto`` asks ``sacct --version``, and if ``--json`` is refused
anyway (a wrapper script, a build without it) reads ``--parsable2`` from then on, saying so in the log.
One thing the JSON of 22.05 can lack: the user of a job run without an association (``_unnamed``);
``auto`` reads such a window again with ``--parsable2``, which names the job's uid.
A format asked for by name is used or fails with sacct's own message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from jobpulse.collector.slurm import accounting, accounting_json
from jobpulse.collector.slurm import cli as slurm_cli
from jobpulse.collector.slurm.cli import SlurmError

log = logging.getLogger(__name__)
FORMATS = ("auto", "json", "parsable")
JSON_SINCE = (21, 8)  # Slurm 21.08
# What sacct (getopt) answers for an option it does not know: "sacct: unrecognized option '--json'".
_UNKNOWN_OPTION = ("unrecognized option", "unknown option", "invalid option")


# Slurm 22.05's sacct --json takes a job's user from its association: a job run without one (a cluster
# that does not enforce associations) has "user": null, where --parsable2 prints the name of its uid.
def _unnamed(jobs: list[str], start: str, end: str) -> str:
    return f"sacct --json names no user for {len(jobs)} job(s) between {start} and {end} (jobs without an association)"


class JsonUnsupported(SlurmError):
    """``--format json`` was asked for and this sacct has no ``--json``."""


def version_of(text: str) -> tuple[int, int] | None:
    """(major, minor) of ``sacct --version``'s answer ("slurm-wlm 22.05.8" is (22, 5)); None if none."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def unknown_option(exc: SlurmError) -> bool:
    """Whether sacct failed because it does not know an option it was given."""
    said = str(exc).lower()
    return any(words in said for words in _UNKNOWN_OPTION)


class Reader:
    """Asks sacct for one window at a time in the format chosen; ``format`` is the one in use and
    ``why`` says why it was chosen (shown at the start of a backfill)."""

    def __init__(
        self,
        asked: str = "auto",
        *,
        version: Callable[[], str] = slurm_cli.sacct_version,
        parsable: Callable[[list[str], str, str], str] = slurm_cli.sacct_parsable,
        json: Callable[[str, str], dict[str, Any]] = slurm_cli.sacct_json,
    ) -> None:
        if asked not in FORMATS:
            raise ValueError(f"sacct format {asked!r} is not one of {', '.join(FORMATS)}")
        self.asked = asked
        self._parsable, self._json = parsable, json
        if asked != "auto":
            self.format, self.why = asked, "asked for"
            return
        said = version()
        found = version_of(said)
        if found is not None and found >= JSON_SINCE:
            self.format, self.why = "json", f"sacct says {said!r}; --json since 21.08"
        else:
            self.format, self.why = "parsable", f"sacct says {said!r}; --json only since 21.08"

    def window(self, start: str, end: str) -> accounting.Window:
        """sacct's job allocations active between ``start`` and ``end`` (sacct's time text)."""
        if self.format == "json":
            try:
                found = accounting_json.window(self._json(start, end))
            except SlurmError as exc:
                if not unknown_option(exc):
                    raise
                if self.asked == "json":
                    raise JsonUnsupported(
                        f"{exc} (this sacct has no --json, which Slurm 21.08 and later have: "
                        "use --format parsable or auto)"
                    ) from None
                log.warning("sacct refused --json (%s); reading --parsable2 instead", exc)
                self.format, self.why = "parsable", "sacct refused --json"
            else:
                unnamed = [r["JobID"] for _, r in found.records if not r.get("User")]
                if not unnamed or self.asked == "json":
                    if unnamed:
                        log.warning(
                            "%s (--format json: stored without a user)", _unnamed(unnamed, start, end)
                        )
                    return found
                # --parsable2 names the user from the job's uid: the window is read again that way
                log.warning("%s; reading this window with --parsable2", _unnamed(unnamed, start, end))
        return accounting.window(self._parsable(accounting.FIELDS, start, end))
