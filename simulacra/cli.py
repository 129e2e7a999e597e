"""Simulacra's command line: ``simulacra ...``, or ``python run.py ...`` in a checkout (the same commands).

python run.py FILE [--steps N] [--seed S] [--out DIR] [--plain] [--set KEY=VALUE] [--replay RUN_DIR] [--view]
python run.py view RUN_DIR [--port P] [--host H]
python run.py validate FILE [--set KEY=VALUE]
python run.py schema
python run.py sandbox SKILL.py [--seed S]
python run.py harvest RUN_DIR [RUN_DIR ...] --out DIR [--min-gap G] [--dedup D]
python run.py resume RUN_DIR [--steps N] [--plain]
python run.py replay RUN_DIR
python run.py verify RUN_DIR
python run.py fork RUN_DIR --at STEP [--set KEY=VALUE ...] [--steps N] --out DIR [--plain]
python run.py interview RUN_DIR (--agent NAME | --all) [--at STEP] [--questions FILE] [QUESTION ...]
python run.py rate RUN_DIR --rubric FILE [--judge-set KEY=VALUE ...]
python run.py sweep FILE [--replicas N] [--grid KEY=V1,V2 ...] [--arm NAME:KEY=VALUE ...] [--ray ADDRESS] --out DIR
python run.py sweep --from RUN_DIR --at STEP [--arm ...] [--replicas N] --out DIR
python run.py sweep --resume DIR
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never fetch weights at run time

from simulacra.errors import SimError  # noqa: E402
from simulacra.scenarios.loading import load_scenario  # noqa: E402
from simulacra.scenarios.reference import reference_markdown  # noqa: E402
from simulacra.scenarios.schema import Scenario  # noqa: E402

COMMANDS = ("validate", "schema", "run", "sandbox", "harvest", "train", "resume", "replay", "fork", "interview", "rate",
            "sweep", "view", "verify")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Simulate societies of LLM-driven agents.")
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
    run.add_argument("--view", action="store_true", help="also serve the web view of the run as it goes "
                     "(kept up after the run until Ctrl-C)")
    _web_options(run)
    view = sub.add_parser("view", help="serve a web page replaying a run folder (a live one too): the world, a step "
                          "slider, agents, events and charts")
    view.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _web_options(view)
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
    _train_parser(sub)
    resume = sub.add_parser("resume", help="go on from a run's newest snapshot (after a kill, a stop, or with more "
                            "--steps)")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--steps", type=int, help="a new total of steps (a finished run goes on)")
    resume.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    replay = sub.add_parser("replay", help="re-run a finished run from its recorded answers; exit 0 if the event "
                            "log is byte-identical, else print the first difference and exit 1")
    replay.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    verify = sub.add_parser("verify", help="compare a run's manifest.json with this machine (a line per field "
                            "that differs), then replay it; exit 0 if reproduced byte for byte, else print the "
                            "first difference and exit 1")
    verify.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    fork = sub.add_parser("fork", help="a new run from a run's snapshot of a step, with overrides")
    fork.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    fork.add_argument("--at", type=int, required=True, metavar="STEP", help="the step whose snapshot to start from")
    fork.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="change a forkable field, e.g. --set agents.1.goal='...' (repeatable)")
    fork.add_argument("--steps", type=int, help="a new total of steps")
    fork.add_argument("--out", type=Path, required=True, help="the new run folder")
    fork.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    _instrument_parsers(sub)
    _sweep_parser(sub)
    return parser


def _web_options(parser: argparse.ArgumentParser) -> None:
    # --port is text here: the view checks it (one line, exit 2), where argparse would print its usage block.
    parser.add_argument("--port", default=8765, help="the web view's port, 0..65535 (0: any free one; default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1, this "
                        "machine only; 0.0.0.0 shows the run to your network, with a warning)")


def _view(args: argparse.Namespace) -> int:
    from simulacra.web.server import ViewServer

    server = ViewServer(args.run_dir, host=args.host, port=args.port).start()
    server.wait(f"web view of {args.run_dir}: {server.url} (Ctrl-C to stop)")
    return 0


def _run(args: argparse.Namespace, scenario: Scenario) -> dict[str, Any]:
    from simulacra.runs.runner import Runner

    runner = Runner(scenario, out=args.out, replay=args.replay, plain=args.plain)
    if not args.view:
        return runner.run()
    from simulacra.web.guard import check_host, listen_port
    from simulacra.web.server import ViewServer

    check_host(args.host)  # a bad --host or --port: one line before the run folder exists
    listen_port(args.port)
    created = not runner.run_dir.exists()
    runner.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = ViewServer(runner.run_dir, host=args.host, port=args.port, live=True).start()
    except BaseException:
        if created:  # e.g. the port is taken: leave no empty run folder behind
            with contextlib.suppress(OSError):
                runner.run_dir.rmdir()
        raise
    runner.console.print(f"web view: {server.url}")
    try:
        summary = runner.run()
    except BaseException:
        server.stop()
        raise
    _report(summary)
    server.wait(f"the run is over; the web view stays at {server.url} until Ctrl-C")
    return summary


def _sweep_parser(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="many runs of a scenario (grid cells x arms x replicas) as Ray tasks; "
                           "writes DIR/sweep.parquet, sweep.md and plots with 95 %% confidence intervals")
    sweep.add_argument("file", type=Path, nargs="?", help="scenario YAML (not with --from or --resume)")
    sweep.add_argument("--replicas", type=int, default=1, help="runs per cell and arm, each with its own seed")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                       help="a field and its values; the cells are every combination (repeatable)")
    sweep.add_argument("--arm", action="append", default=[], metavar="NAME:KEY=VALUE",
                       help="an arm and one of its overrides (repeat per override; NAME alone: no change)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a field in every run (repeatable)")
    sweep.add_argument("--steps", type=str, help="override the number of steps")
    sweep.add_argument("--seed", type=str, help="the sweep seed (replica 0 runs with it; the others draw theirs)")
    sweep.add_argument("--from", dest="parent", type=Path, metavar="RUN_DIR",
                       help="fork every run from this run's snapshot of --at STEP (a shared prefix)")
    sweep.add_argument("--at", type=int, metavar="STEP", help="with --from: the step the forks start at")
    sweep.add_argument("--ray", metavar="ADDRESS", help="join a running Ray cluster (HOST:PORT); default: start "
                       "a local instance sized to this machine, on loopback")
    sweep.add_argument("--max-parallel", type=int, help="runs at once (default: the cluster's CPUs / "
                       "--cpus-per-run)")
    sweep.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs Ray reserves per run (also "
                       "llama.cpp's threads unless --set llm.n_threads)")
    sweep.add_argument("--retries", type=int, default=2, help="restarts of a run whose worker or node died, "
                       "from its newest snapshot")
    sweep.add_argument("--out", type=Path, help="the sweep folder (new)")
    sweep.add_argument("--resume", type=Path, metavar="DIR", help="go on with the sweep in DIR: completed runs "
                       "are kept, the others resume from their snapshots")
    sweep.add_argument("--plain", action="store_true", help="plain lines instead of the live table")


def _instrument_parsers(sub: Any) -> None:
    """``interview`` and ``rate``: instruments that read a finished run and write only their own folder in it."""
    interview = sub.add_parser("interview", help="ask agents of a run questions, as they were at a step; answers "
                               "go to RUN_DIR/interviews/ (nothing else in the run folder changes)")
    interview.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    who = interview.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", help="the agent asked")
    who.add_argument("--all", action="store_true", help="ask every agent")
    interview.add_argument("--at", type=int, metavar="STEP", help="the step whose snapshot the agent is loaded "
                           "from (default: the newest)")
    interview.add_argument("--questions", type=Path, metavar="FILE", help="a text file, one question per line")
    interview.add_argument("question", nargs="*", help="the question(s); none and no --questions: ask "
                           "interactively, one a line, until an empty line")
    rate = sub.add_parser("rate", help="an LLM judge scores each agent's transcript on a rubric; writes "
                          "RUN_DIR/ratings/<rubric>.jsonl, .md and .png")
    rate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rate.add_argument("--rubric", required=True, help="a rubric YAML file, or a shipped one: believability, sotopia")
    rate.add_argument("--judge-set", dest="judge_overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="the judge's engine, if not the run's: llm.* fields, e.g. --judge-set llm.backend=openai")


def _interview(args: argparse.Namespace) -> int:
    from simulacra.instruments.interview import Interview, read_questions

    questions = list(args.question)
    if args.questions is not None:
        questions += read_questions(args.questions)
    interview = Interview(args.run_dir, at=args.at)
    agents = interview.agents if args.all else [interview.agent(args.agent)]
    if not questions:
        return interview.interactive(agents)
    interview.ask(agents, questions)
    print(f"answers written to {interview.out}")
    return 0


def _rate(args: argparse.Namespace) -> int:
    from simulacra.instruments.rating import Rater

    rater = Rater(args.run_dir, args.rubric, judge_overrides=args.judge_overrides)
    rater.run()
    return 0


def _sweep(args: argparse.Namespace) -> int:
    if not math.isfinite(args.cpus_per_run) or args.cpus_per_run <= 0:  # before Ray starts, which would refuse it
        msg = f"--cpus-per-run {args.cpus_per_run:g}: give a number of CPUs above 0, e.g. 1 or 0.5"
        raise SimError(msg)
    from simulacra.sweeps import Sweep, SweepPlan

    options = {"address": args.ray, "max_parallel": args.max_parallel, "cpus_per_run": args.cpus_per_run,
               "retries": args.retries, "plain": args.plain}
    if args.resume is not None:
        if args.file or args.grid or args.arm or args.overrides or args.parent or args.out:
            msg = "sweep --resume DIR goes on with DIR's own plan; give no FILE, --grid, --arm, --set, --from or --out"
            raise SimError(msg)
        sweep = Sweep.resume(args.resume, **options)
    else:
        if args.out is None:
            msg = "sweep: give --out DIR, a new folder for the runs and the summary"
            raise SimError(msg)
        sets = list(args.overrides) + [f"{f}={getattr(args, f)}" for f in ("steps", "seed") if getattr(args, f)]
        plan = SweepPlan.from_args(args.file, sets=sets, grid=args.grid, arms=args.arm, replicas=args.replicas,
                                   parent=args.parent, at=args.at, out=args.out, cpus_per_run=args.cpus_per_run)
        sweep = Sweep(plan, args.out, **options)
    result = sweep.run()
    listed = ", ".join(f"{n} {status}" for status, n in result["statuses"].items())
    print(f"sweep folder: {result['out']}\n{result['runs']} runs ({listed}) in {result['wall_s']} s; "
          f"summary: {Path(result['out']) / 'sweep.md'}")
    return 0 if set(result["statuses"]) == {"completed"} else 1


def _lineage(args: argparse.Namespace) -> int:
    """resume, replay and fork: runs that start from another run."""
    from simulacra.runs.lineage import Lineage

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
        _check_out(args.out)
        runner = lineage.fork(args.out, at=args.at, overrides=args.overrides, steps=args.steps, plain=args.plain)
    return _report(runner.run())


def _verify(args: argparse.Namespace) -> int:
    """What differs between the run's manifest and this machine, then a replay: 0 if byte for byte, else 1."""
    from simulacra.runs.lineage import Lineage
    from simulacra.runs.manifest import Manifest

    lineage = Lineage(args.run_dir)
    for line in Manifest.read(args.run_dir).differences(args.run_dir):
        print(line)
    same, difference = lineage.replay()
    if same:
        print("reproduced byte for byte")
        return 0
    print(f"not reproduced: {difference}")
    return 1


def _report(summary: dict[str, Any]) -> int:
    llm = summary["llm"]
    print(f"run folder: {summary['run_dir']}\n{summary['steps']} steps in {summary['wall_s']} s; "
          f"LLM {llm['calls']} calls ({llm['cache_hits']} cached, {llm['failures']} failed), "
          f"{llm['completion_tokens']} tokens at {llm['tokens_per_s']} tok/s")
    per_step = llm.get("prompt_tokens_per_agent_step")
    if per_step is not None:
        cost = f"; cost ${llm['cost']:.6g} (${llm['cost_per_agent_step']:.3g} per agent-step)" if "cost" in llm else ""
        print(f"tokens per agent-step: {per_step} prompt + {llm['completion_tokens_per_agent_step']} completion{cost}")
    for model, counts in llm.get("by_model", {}).items():
        print(f"  {model}: {counts['calls']} calls ({counts['cache_hits']} cached), {counts['prompt_tokens']} prompt + "
              f"{counts['completion_tokens']} completion tokens")
    for line in _measures(summary):
        print(line)
    return 0


def _measures(summary: dict[str, Any]) -> list[str]:
    """Lines for what the run measured: diffusion from memories, and each survey item's figures per step."""
    lines = []
    diffusion = summary.get("diffusion")
    if diffusion:
        lines.append(f"diffusion (from memories): {len(diffusion['knows'])} of {diffusion.get('agents', '?')} know "
                     f"({', '.join(diffusion['knows']) or 'nobody'}); {len(diffusion['attended'])} attended")
    for survey, items in summary.get("surveys", {}).items():
        for item, info in items.items():
            steps = "; ".join(f"step {step}: {_figures(figures)}" for step, figures in info["steps"].items())
            lines.append(f"survey {survey}.{item} ({info['type']}): {steps or 'not asked'}")
    return lines


def _figures(figures: dict[str, float | None]) -> str:
    n = int(figures["n"] or 0)
    if figures.get("mean") is not None and "1" not in figures:  # a number item: mean and spread
        return f"mean {figures['mean']:.2f} sd {figures['sd']:.2f} (n={n})"
    shares = [f"{k} {v:.0%}" for k, v in figures.items() if k not in ("n", "failed", "mean", "sd") and v]
    mean = f", mean {figures['mean']:.2f}" if figures.get("mean") is not None else ""
    return f"{' '.join(shares) or 'answered'}{mean} (n={n})"


def _harvest(args: argparse.Namespace) -> int:
    from simulacra.data.harvest import Harvest, read_run

    _check_out(args.out)
    runs = [read_run(path) for path in args.runs]
    counts = Harvest(runs, min_gap=args.min_gap, dedup=args.dedup).write(args.out)
    listed = ", ".join(f"{name} {n}" for name, n in counts.items()) or "nothing to harvest"
    print(f"harvested {len(runs)} run(s) into {args.out}: {listed}")
    return 0


def _train_parser(sub: Any) -> None:
    train = sub.add_parser("train", help="train a model on harvests (TRL: sft, dpo; the Stable Alignment objective), "
                           "with held-out metrics before and after; writes a Hugging Face folder, a GGUF and a card")
    train.add_argument("harvests", type=Path, nargs="+", metavar="HARVEST_DIR")
    train.add_argument("--method", required=True, choices=["sft", "dpo", "stable-alignment"])
    train.add_argument("--out", type=Path, required=True, help="a new folder (or the same one, to resume)")
    train.add_argument("--base", help="a Hugging Face model folder or a GGUF (default: the shipped SmolLM2)")
    train.add_argument("--lora", action="store_true", help="train LoRA adapters (peft), merged at the end")
    train.add_argument("--epochs", type=float, default=1.0)
    train.add_argument("--seed", type=int, default=0, help="seeds the split, the order and the initial weights")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="train.KEY=VALUE",
                       help="a training setting (README: Training), e.g. --set train.learning_rate=1e-4")


def _train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from simulacra.errors import ScenarioError
    from simulacra.runs.run_files import interruptible
    from simulacra.training.config import train_config
    from simulacra.training.train import TrainRequest, train

    if args.epochs <= 0 or args.epochs > 10_000:
        msg = f"--epochs {args.epochs}: give a number of epochs above 0 (at most 10000)"
        raise ScenarioError(msg)
    request = TrainRequest(harvests=args.harvests, method=args.method, out=args.out, base=args.base, lora=args.lora,
                           epochs=args.epochs, seed=args.seed, config=train_config(args.overrides))
    with interruptible():
        metrics = train(request, Console(stderr=True))
    before, after = metrics["before"], metrics["after"]
    print(f"trained {args.method} into {args.out}: held-out preference accuracy {before['preference_accuracy']} -> "
          f"{after['preference_accuracy']}, reward margin {before['reward_margin']} -> {after['reward_margin']}, "
          f"SFT loss {before['sft_loss']} -> {after['sft_loss']}; {metrics['gguf']} loads in llama.cpp")
    return 0


def _check_out(out: Path) -> None:
    """Refuses an ``--out`` (fork, harvest) that cannot become a new folder: a file, inside a file, not writable.

    Raises:
        SimError: One line naming ``--out`` and what is in the way.
    """
    full = out.absolute()
    try:
        there = next(p for p in (full, *full.parents) if p.exists())  # the root always exists
        if there == full and not full.is_dir():
            msg = f"--out {str(out)!r} is a file; give a new folder"
        elif not there.is_dir():
            msg = f"--out {str(out)!r}: {str(there)!r} is a file, not a folder; give a new folder elsewhere"
        elif not os.access(there, os.W_OK | os.X_OK):
            msg = f"--out {str(out)!r}: cannot write in {str(there)!r} (permission denied); give a folder you can write"
        else:
            return
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        msg = f"--out {str(out)!r}: cannot use it ({err}); give a new folder"
    raise SimError(msg)


def _sandbox(file: Path, seed: int) -> int:
    """Runs the skill in ``file`` as a crafting agent would; 0 if it ran to the end, 1 if not."""
    import json

    from simulacra.agents.sandbox import Sandbox, format_result
    from simulacra.scenarios.bounded import read_text
    from simulacra.worlds.crafting import CraftingWorld

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


def _one_line_warnings() -> None:
    """A scenario's old names are reported as ``warning: ...``, one line on stderr."""
    from simulacra.scenarios.schema import ScenarioDeprecation

    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ScenarioDeprecation):
            print(f"warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    warnings.filterwarnings("once", category=ScenarioDeprecation)  # a sweep loads its scenario many times


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input)."""
    _one_line_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "run")
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives a trailing positional (QUESTION after --agent NAME) to no one: it is an interview's question.
    if extra and args.command == "interview" and not any(e.startswith("-") for e in extra):
        args.question += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "schema":
            print(reference_markdown())
            return 0
        if args.command == "sandbox":
            return _sandbox(args.file, args.seed)
        if args.command == "harvest":
            return _harvest(args)
        if args.command == "train":
            return _train(args)
        if args.command == "verify":
            return _verify(args)
        if args.command in ("resume", "replay", "fork"):
            return _lineage(args)
        if args.command == "interview":
            return _interview(args)
        if args.command == "rate":
            return _rate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "view":
            return _view(args)
        scenario = _load(args)
        if args.command == "validate":
            print(f"{args.file}: valid ({scenario.world.type} world, {len(scenario.population):,} agents, "
                  f"{scenario.steps} steps, {scenario.llm.backend} backend)")
            return 0
        summary = _run(args, scenario)
        if args.view:
            return 0  # reported before the view's wait
    except SimError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("interrupted; the run folder holds everything up to here", file=sys.stderr)
        return 130
    return _report(summary)


if __name__ == "__main__":
    sys.exit(main())
