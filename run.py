"""Simulacra's command line: validate a scenario, run it, print the scenario reference.

python run.py FILE [--steps N] [--seed S] [--out DIR] [--plain] [--set KEY=VALUE] [--replay RUN_DIR]
python run.py validate FILE [--set KEY=VALUE]
python run.py schema
python run.py sandbox SKILL.py [--seed S]
python run.py harvest RUN_DIR [RUN_DIR ...] --out DIR [--min-gap G] [--dedup D]
python run.py resume RUN_DIR [--steps N] [--plain]
python run.py replay RUN_DIR
python run.py fork RUN_DIR --at STEP [--set KEY=VALUE ...] [--steps N] --out DIR [--plain]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never fetch weights at run time

from agents.errors import SimError  # noqa: E402
from scenarios.reference import reference_markdown  # noqa: E402
from scenarios.schema import Scenario, load_scenario  # noqa: E402

COMMANDS = ("validate", "schema", "run", "sandbox", "harvest", "resume", "replay", "fork")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Simulate societies of LLM-driven agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario (the default command: python run.py FILE)")
    run.add_argument("file", type=Path, help="scenario YAML")
    run.add_argument("--steps", type=str, help="override the number of steps")
    run.add_argument("--seed", type=str, help="override the seed")
    run.add_argument("--out", type=Path, help="run folder (default: <outputs.dir>/<name>-<timestamp>)")
    run.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    run.add_argument("--replay", type=Path, metavar="RUN_DIR", help="reuse the LLM answers recorded in a run")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a scenario field, e.g. --set llm.backend=openai (repeatable)")
    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("file", type=Path)
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sub.add_parser("schema", help="print the reference of every scenario field (Markdown)")
    sandbox = sub.add_parser("sandbox", help="run a skill file's first function in the sandbox against a fresh "
                             "crafting world; print one JSON line")
    sandbox.add_argument("file", type=Path, help="a Python file defining def skill(bot): ...")
    sandbox.add_argument("--seed", type=int, default=0, help="seed of the fresh world's map")
    harvest = sub.add_parser("harvest", help="turn run folders into datasets (ratings, preferences, sft, skills, "
                             "tasks) as JSONL + Parquet with a dataset card")
    harvest.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    harvest.add_argument("--out", type=Path, required=True, help="a new (or empty) folder for the datasets")
    harvest.add_argument("--min-gap", type=float, default=1.0, help="least score gap of a preference pair")
    harvest.add_argument("--dedup", type=float, default=0.95,
                         help="drop prompts this similar (0-1) to a kept one from preferences and sft")
    resume = sub.add_parser("resume", help="go on from a run's newest snapshot (after a kill, a stop, or with more "
                            "--steps)")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--steps", type=int, help="a new total of steps (a finished run goes on)")
    resume.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    replay = sub.add_parser("replay", help="re-run a finished run from its recorded answers; exit 0 if the event "
                            "log is byte-identical, else print the first difference and exit 1")
    replay.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    fork = sub.add_parser("fork", help="a new run from a run's snapshot of a step, with overrides")
    fork.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    fork.add_argument("--at", type=int, required=True, metavar="STEP", help="the step whose snapshot to start from")
    fork.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="change a forkable field, e.g. --set agents.1.goal='...' (repeatable)")
    fork.add_argument("--steps", type=int, help="a new total of steps")
    fork.add_argument("--out", type=Path, required=True, help="the new run folder")
    fork.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    return parser


def _lineage(args: argparse.Namespace) -> int:
    """resume, replay and fork: runs that start from another run."""
    from worlds.lineage import Lineage

    lineage = Lineage(args.run_dir)
    if args.command == "replay":
        same, difference = lineage.replay()
        if same:
            size = (args.run_dir / "events.jsonl").stat().st_size
            print(f"{args.run_dir}: replay identical ({size} bytes of events)")
            return 0
        print(f"{args.run_dir}: replay differs; {difference}")
        return 1
    if args.command == "resume":
        runner = lineage.resume(steps=args.steps, plain=args.plain)
    else:
        runner = lineage.fork(args.out, at=args.at, overrides=args.overrides, steps=args.steps, plain=args.plain)
    return _report(runner.run())


def _report(summary: dict[str, Any]) -> int:
    llm = summary["llm"]
    print(f"run folder: {summary['run_dir']}\n{summary['steps']} steps in {summary['wall_s']} s; "
          f"LLM {llm['calls']} calls ({llm['cache_hits']} cached, {llm['failures']} failed), "
          f"{llm['completion_tokens']} tokens at {llm['tokens_per_s']} tok/s")
    return 0


def _harvest(args: argparse.Namespace) -> int:
    from worlds.harvest import Harvest, read_run

    runs = [read_run(path) for path in args.runs]
    counts = Harvest(runs, min_gap=args.min_gap, dedup=args.dedup).write(args.out)
    listed = ", ".join(f"{name} {n}" for name, n in counts.items()) or "nothing to harvest"
    print(f"harvested {len(runs)} run(s) into {args.out}: {listed}")
    return 0


def _sandbox(file: Path, seed: int) -> int:
    """Runs the skill in ``file`` as a crafting agent would; 0 if it ran to the end, 1 if not."""
    import json

    from agents.sandbox import Sandbox, format_result
    from scenarios.bounded import read_text
    from worlds.crafting import CraftingWorld

    code = read_text(file, what="skill file")  # one line for a missing, huge, binary or non-UTF-8 file
    world = CraftingWorld(seed=seed, players=["player"])
    bot = world.begin_turn("player")
    result = Sandbox().run(code, bot.api())
    line = json.loads(format_result(result)) | {"changes": world.changes_since(0)}
    print(json.dumps(line))
    return 0 if result.status == "ok" else 1


def _load(args: argparse.Namespace) -> Scenario:
    overrides = list(args.overrides)
    for field in ("steps", "seed"):
        value = getattr(args, field, None)
        if value is not None:
            overrides.append(f"{field}={value}")
    return load_scenario(args.file, overrides)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "run")
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            print(reference_markdown())
            return 0
        if args.command == "sandbox":
            return _sandbox(args.file, args.seed)
        if args.command == "harvest":
            return _harvest(args)
        if args.command in ("resume", "replay", "fork"):
            return _lineage(args)
        scenario = _load(args)
        if args.command == "validate":
            print(f"{args.file}: valid ({scenario.world.type} world, {len(scenario.agents)} agents, "
                  f"{scenario.steps} steps, {scenario.llm.backend} backend)")
            return 0
        from worlds.runner import Runner

        runner = Runner(scenario, out=args.out, replay=args.replay, plain=args.plain)
        summary = runner.run()
    except SimError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("interrupted; the run folder holds everything up to here", file=sys.stderr)
        return 130
    return _report(summary)


if __name__ == "__main__":
    sys.exit(main())
