"""What `run.py train` costs on this machine: throughput and peak memory per method on the shipped model.

    .venv/bin/python bench/train_bench.py [--pairs 100] [--methods dpo,stable-alignment,sft] [--full]

Each method trains on the same synthetic harvest (tests/train_data.py: the chosen answer carries a learnable mark),
one epoch at batch 8, LoRA unless ``--full``, in its own process under ``/usr/bin/time`` (wall time and peak RSS).
Examples/s and tokens/s are over the training loop alone (``train_seconds`` in metrics.json); tokens are the
tokenizer's count of prompt and answer per trained sequence, capped at ``train.max_length`` (a preference pair is
two sequences). Writes bench/results/train.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.train_data import synthetic_harvest  # noqa: E402

MAX_LENGTH = 128
SEED = 0


def _tokens(model: Path, harvest: Path, method: str, rows: int) -> int:
    """Tokens the loop trained on in one epoch: the first ``rows`` training rows' sequences, each capped."""
    from transformers import AutoTokenizer

    from simulacra.training.config import TrainConfig
    from simulacra.training.data import load_harvests

    tokenizer = AutoTokenizer.from_pretrained(str(model / "hf"))
    data = load_harvests([harvest], method)
    train, _ = data.split(TrainConfig().heldout, SEED)  # the split the training made
    total = 0
    for row in train[:rows]:
        if "messages" in row:
            texts = [" ".join(m["content"] for m in row["messages"])]
        else:
            texts = [row["prompt"] + " " + row["chosen"], row["prompt"] + " " + row["rejected"]]
        total += sum(min(MAX_LENGTH, len(tokenizer(t)["input_ids"])) for t in texts)
    return total


def bench(method: str, pairs: int, *, full: bool, work: Path) -> dict[str, Any]:
    """Trains ``method`` on a synthetic harvest of ``pairs`` pairs in a process of its own; its figures."""
    harvest = synthetic_harvest(work / f"harvest-{method}", pairs=pairs)
    out = work / f"model-{method}"
    command = ["/usr/bin/time", "-f", "%e %M", sys.executable, str(ROOT / "run.py"), "train", str(harvest),
               "--method", method, "--out", str(out), "--seed", str(SEED), "--set", f"train.max_length={MAX_LENGTH}",
               "--set", "train.batch_size=8", "--set", "train.save_steps=100000", *([] if full else ["--lora"])]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        msg = f"{method}: train failed: {done.stderr[-1500:]}"
        raise SystemExit(msg)
    wall = time.perf_counter() - started
    peak_kb = int(done.stderr.strip().splitlines()[-1].split()[1])
    metrics = json.loads((out / "metrics.json").read_text())
    rows, seconds = metrics["train_rows"], metrics["train_seconds"]
    tokens = _tokens(out, harvest, method, rows)
    return {"method": method, "lora": not full, "pairs": pairs, "train_rows": rows, "wall_s": round(wall, 1),
            "train_s": seconds, "examples_per_s": round(rows / seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "peak_rss_gb": round(peak_kb / 1024**2, 2), "before": metrics["before"], "after": metrics["after"]}


def main() -> None:
    """Every method in turn; the table to stdout and bench/results/train.{md,json}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--methods", default="dpo,stable-alignment,sft")
    parser.add_argument("--full", action="store_true", help="a full fine-tune instead of LoRA")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            rows.append(bench(method, args.pairs, full=args.full, work=Path(tmp)))
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("before", "after")}), flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(), "rows": rows}
    (results / "train.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    lines = [f"# run.py train on the shipped model ({info['date']}, {info['machine']})", "",
             "| method | LoRA | pairs | rows trained | wall s | loop s | examples/s | tokens/s | peak RSS GB | "
             "held-out accuracy | SFT loss |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        before, after = r["before"], r["after"]
        accuracy = (f"{before.get('preference_accuracy', '-')} -> {after.get('preference_accuracy', '-')}"
                    if after.get("preference_accuracy") is not None else "-")
        lines.append(f"| {r['method']} | {r['lora']} | {r['pairs']} | {r['train_rows']} | {r['wall_s']} | "
                     f"{r['train_s']} | {r['examples_per_s']} | {r['tokens_per_s']} | {r['peak_rss_gb']} | {accuracy} "
                     f"| {before['sft_loss']} -> {after['sft_loss']} |")
    (results / "train.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
