"""CI check: the committed catalog matches the code, and every string has a Spanish translation.

Run as ``python -m app.i18n_check``; exits non-zero with what is missing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

from app.config import LOCALES_DIR, ROOT
from app.i18n import SUPPORTED_LANGUAGES


def _msgids(path: Path) -> set[str]:
    with path.open("rb") as fh:
        return {str(m.id) for m in read_po(fh) if m.id}


def problems() -> list[str]:
    found: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "-q",
                "extract",
                "-F",
                "babel.cfg",
                "-k",
                "_",
                "--omit-header",
                "--no-location",
                "--sort-output",
                "-o",
                str(fresh),
                ".",
            ],
            cwd=ROOT,
            check=True,
        )
        code = _msgids(fresh)
    committed = _msgids(LOCALES_DIR / "messages.pot")
    for missing in sorted(code - committed):
        found.append(f"locales/messages.pot lacks {missing!r}: run `make extract-catalog`")
    for stale in sorted(committed - code):
        found.append(f"locales/messages.pot still has {stale!r}: run `make extract-catalog`")
    for lang in SUPPORTED_LANGUAGES:
        po = LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            found.append(f"{po.relative_to(ROOT)} is missing")
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh)
        for msgid in sorted(code):
            message = catalog.get(msgid)
            if message is None:
                found.append(f"{lang}: no entry for {msgid!r}")
            elif lang != "en" and (not message.string or message.fuzzy):
                found.append(f"{lang}: no translation for {msgid!r}")
    return found


def main() -> int:
    issues = problems()
    for issue in issues:
        print(issue, file=sys.stderr)
    if not issues:
        print("catalogs are current")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
