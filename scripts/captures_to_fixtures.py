"""Turn a capture (files after '--- <name>' lines, as in shared/cgroup-samples) into a directory.

Usage: python scripts/captures_to_fixtures.py CAPTURE.txt DEST_DIR
Kept so fixture trees can be rebuilt from new real captures; the trees are committed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def explode(capture: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            (dest / name).write_text("".join(lines))

    for line in capture.read_text().splitlines(keepends=True):
        if line.startswith("--- "):
            flush()
            name, lines = line[4:].strip(), []
        else:
            lines.append(line)
    flush()


if __name__ == "__main__":
    explode(Path(sys.argv[1]), Path(sys.argv[2]))
