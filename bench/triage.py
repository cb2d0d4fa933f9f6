"""Red-flag triage speed: per-message time of ``Triage.assess`` after load, over the labeled corpus.

Run: ``.venv/bin/python -m bench.triage [FILE.tsv ...]`` (default: ../shared/triage/corpus.tsv when it exists,
and tests/unit/triage_heldout.tsv). Prints the load time, then the mean and p99 per message of a warm pass
(every message assessed ``--rounds`` times; the token cache is warm as it is in a long-running worker) and of
a cold first pass (empty cache).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.triage import load_triage
from app.triage.evaluation import parse_rows
from bench import ROOT, machine_lines, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    corpora = [root / "shared" / "triage" / "corpus.tsv" for root in (ROOT.parent, ROOT.parent.parent)]
    files = args.files or [p for p in (*corpora, ROOT / "tests/unit/triage_heldout.tsv") if p.exists()]
    texts = [row.text for path in files for row in parse_rows(path.read_text(encoding="utf-8").splitlines(), str(path))]
    for line in machine_lines():
        print(line)
    started = time.perf_counter()
    triage = load_triage(ROOT / "content" / "triage", ROOT)
    print(f"load: {(time.perf_counter() - started) * 1000:.1f} ms; {len(texts)} messages from {len(files)} file(s)")

    def timed_pass() -> list[float]:
        times = []
        for text in texts:
            start = time.perf_counter()
            triage.assess(text)
            times.append((time.perf_counter() - start) * 1e6)
        return times

    cold = sorted(timed_pass())
    warm: list[float] = []
    for _ in range(args.rounds):
        warm.extend(timed_pass())
    warm.sort()
    for name, values in (("cold (first pass)", cold), (f"warm ({args.rounds} passes)", warm)):
        mean = sum(values) / len(values)
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:20} mean {mean:7.1f} µs   p50 {p50:7.1f} µs   p99 {p99:7.1f} µs")


if __name__ == "__main__":
    main()
