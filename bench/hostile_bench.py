"""What a hostile scenario file costs `run.py validate`: CPU seconds and memory, past the interpreter's start.

    .venv/bin/python bench/hostile_bench.py [--repeat 3]

Runs `python run.py validate` on a small valid file (the start: interpreter and imports) and on each hostile
file of the test suite (`tests/test_hostile_files.py`: a billion laughs, 2 MB, binary junk, non-UTF-8, 10,000
levels of nesting) plus the worst files within the size limit. The least CPU seconds of each (noise only adds),
less the start's, is what the file adds. Writes bench/results/hostile.{md,json}.
Goal (issue 9): a hostile file adds under 0.5 s of CPU and stays under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import MINIMAL  # noqa: E402
from tests.test_hostile_files import HOSTILE, _validate  # noqa: E402

WORST = [  # within the 1 MB size limit, the files that make the parser work hardest before a limit stops it
    ("249,000 values", "- a\n" * 249_000),
    ("330,000 flow values", "[" + "a, " * 330_000 + "]"),
    ("999,000 deep", "[" * 999_000),
    ("syntax error after 4,000 lines", "- a\n" * 4_000 + "[\n"),
]
GOAL_CPU_S, GOAL_RSS_MB = 0.5, 300


def main() -> None:
    """Runs the benchmark and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each file; the least CPU time counts")
    args = parser.parse_args()
    files: list[tuple[str, bytes]] = [("valid (the start)", MINIMAL.encode())]
    files += [(case, content) for case, content, _ in HOSTILE] + [(case, text.encode()) for case, text in WORST]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, content in files:
            path = Path(tmp) / "s.yaml"
            path.write_bytes(content)
            runs = [_validate(path) for _ in range(args.repeat)]
            rows.append({"file": case, "bytes": len(content), "status": runs[0][0],
                         "cpu_s": min(run[2] for run in runs), "rss_mb": max(run[3] for run in runs)})
            print(f"{case}: exit {rows[-1]['status']}, {rows[-1]['cpu_s']:.2f} s CPU, {rows[-1]['rss_mb']:.0f} MB")
    start = rows[0]["cpu_s"]
    for row in rows[1:]:
        row["added_cpu_s"] = round(row["cpu_s"] - start, 3)
        row["within_goal"] = row["added_cpu_s"] < GOAL_CPU_S and row["rss_mb"] < GOAL_RSS_MB
    result = {"rows": rows, "goal": {"added_cpu_s": GOAL_CPU_S, "rss_mb": GOAL_RSS_MB}, "repeat": args.repeat,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["| file | bytes | exit | CPU s (least of the runs) | added to the start, s | max RSS MB | within goal |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        added = f"{row['added_cpu_s']:.2f}" if "added_cpu_s" in row else "-"
        within = ("yes" if row["within_goal"] else "**no**") if "within_goal" in row else "-"
        lines.append(f"| {row['file']} | {row['bytes']:,} | {row['status']} | {row['cpu_s']:.2f} | {added} | "
                     f"{row['rss_mb']:.0f} | {within} |")
    load = ", ".join(f"{x:.1f}" for x in result["machine"]["load"])
    lines += ["", f"Goal: under {GOAL_CPU_S} s of CPU added to the start and under {GOAL_RSS_MB} MB. "
              f"{args.repeat} runs each; machine load {load}."]
    (out / "hostile.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
