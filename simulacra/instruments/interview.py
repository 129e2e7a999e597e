"""Interviews: agents of a run answer questions in their own voice, as they were at one of its snapshots.

Generative Agents measured what their town knew by interviewing every agent at the end; this does the same
for any run folder. The world is rebuilt from ``scenario.yaml`` around copies of the run's stores (``chroma/``,
``skills/``) in a temporary folder and restored from the snapshot of the step asked for, so the run folder
is only read: answers go to ``RUN_DIR/interviews/<timestamp>.jsonl``, beside the interviews' own LLM cache
(the same question at the same step gets the same seed, so an interview replays identically).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt

from simulacra.agents.llm import LLMClient, LLMStats, ResponseCache
from simulacra.agents.respondent import INTERVIEW, Recalls, Response, instrument_seed, respond, respondent
from simulacra.errors import ScenarioError, SimError
from simulacra.runs.engines import run_client
from simulacra.runs.lineage import COPIED, Lineage
from simulacra.runs.run_files import copy_run_part, fresh_dir
from simulacra.runs.runner import restore, run_seed
from simulacra.scenarios.bounded import read_text
from simulacra.worlds.world import World, WorldSetup, gather

__all__ = ["MAX_QUESTION_CHARS", "MAX_QUESTIONS", "Interview", "read_questions"]

MAX_QUESTIONS = 1000  # in one --questions file
MAX_QUESTION_CHARS = 500


def read_questions(path: Path) -> list[str]:
    """The questions of a text file: one a line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        ScenarioError: One line: not a regular file (a FIFO, a device), unreadable, too big, not UTF-8, no
            question, too many, or one too long.
    """
    text = read_text(path, what="question list", regular=True)  # a FIFO would hang the interview
    questions: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_QUESTION_CHARS:
            msg = f"{path}:{number}: a question of {len(line):,} characters; at most {MAX_QUESTION_CHARS}, one a line"
            raise ScenarioError(msg)
        questions.append(line)
        if len(questions) > MAX_QUESTIONS:
            msg = f"{path}:{number}: more than {MAX_QUESTIONS} questions; split the file"
            raise ScenarioError(msg)
    if not questions:
        msg = f"{path}: no question in the file; write one question a line"
        raise ScenarioError(msg)
    return questions


class Interview:
    """One interview session over one run folder, at one step.

    Everything that can be refused (not a run folder, no snapshot of the step, an unknown agent) is refused when
    the session is made or an agent is named, before anything is written or loaded.
    """

    def __init__(self, run_dir: Path, *, at: int | None = None, console: Console | None = None) -> None:
        """Reads the run's scenario and the snapshot of ``at``; the world is built on the first question.

        Args:
            run_dir: A run folder.
            at: The step whose snapshot the agents are loaded from; None: the newest.
            console: Where answers are printed.

        Raises:
            SimError: Not a run folder, no snapshot of ``at`` (the message lists those there are), or a run kept
                in a shared Chroma (its memories cannot be loaded as they were at a step without changing them).
        """
        lineage = Lineage(run_dir)
        self.run_dir = run_dir
        self._snapshots = lineage.snapshots
        self.snapshot = lineage.snapshots.load(at)
        self.step = int(self.snapshot["step"])
        self.scenario = lineage.scenario()
        self.seed = run_seed(self.scenario, self.snapshot.get("run", {}))  # a reseeded fork's own seed
        if self.scenario.memory.chroma_url or self.scenario.memory.chroma_path:
            msg = (f"{run_dir}: the run keeps its memories in a shared Chroma (memory.chroma_url/chroma_path); loading "
                   "an agent as it was at a step would rewind that store, so interview a run made without them")
            raise SimError(msg)
        self.console = console or Console()
        self.out = fresh_dir(run_dir / "interviews", "", suffix=".jsonl")
        self._world: World | None = None
        self._client: LLMClient | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._file: IO[str] | None = None
        self._respondents: dict[str, Recalls] = {}

    @property
    def agents(self) -> list[str]:
        """Every agent of the run, in the scenario's order."""
        return [a.name for a in self.scenario.population]

    def agent(self, name: str) -> str:
        """Checks that ``name`` is an agent of the run.

        Raises:
            SimError: It is not; the message lists the agents.
        """
        if name not in self.agents:
            import difflib

            close = difflib.get_close_matches(name, self.agents, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg = f"--agent {name!r}: no such agent in {self.run_dir}; {hint}agents: {', '.join(self.agents)}"
            raise SimError(msg)
        return name

    def ask(self, agents: Sequence[str], questions: Sequence[str]) -> list[dict[str, Any]]:
        """Asks every agent every question (all at once), prints and records the answers.

        Returns:
            The records written to `out`, questions in order, agents in order within a question.
        """
        try:
            self._load()
            pairs = [(q, self._respondents[self.agent(a)]) for q in questions for a in agents]
            responses = self._client_().run(gather(self._respond(agent, q) for q, agent in pairs))
            return [self._record(r) for r in responses]
        finally:
            self.close()

    def interactive(self, agents: Sequence[str]) -> int:
        """Asks one question a line, typed at a prompt, until an empty line (or end of input).

        Returns:
            0.
        """
        names = ", ".join(agents)
        self.console.print(f"Interviewing {names} as of step {self.step} of {self.run_dir}; an empty line ends.")
        try:
            while True:
                try:
                    question = Prompt.ask("[bold]question[/]", console=self.console, default="", show_default=False)
                except EOFError:
                    break
                question = question.strip()[:MAX_QUESTION_CHARS]
                if not question:
                    break
                self._load()
                responses = self._client_().run(gather(self._respond(self._respondents[a], question)
                                                       for a in agents))
                for response in responses:
                    self._record(response)
        finally:
            self.close()
        if self.out.exists():
            self.console.print(f"answers written to {self.out}")
        return 0

    def close(self) -> None:
        """Releases the engine, the answers file and the temporary copies of the stores."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._world = None

    # -- helpers ---------------------------------------------------------------------------------------
    async def _respond(self, agent: Recalls, question: str) -> Response:
        world = self._load()
        return await respond(agent, self._client_(), question=question, item=INTERVIEW, template="interview",
                             time=world.clock_text(), k=self.scenario.memory.retrieval.top_k,
                             seed=instrument_seed(self.seed, "interview", self.step, agent.name, question),
                             purpose="interview")

    def _load(self) -> World:
        """Builds the world around copies of the run's stores and restores the snapshot (once).

        The world is built as the run built it (`WorldSetup.build`, under the run's id, so its Chroma
        collections are found), and each agent answers on its own engine, as in the run.
        """
        if self._world is not None:
            return self._world
        self._tmp = tempfile.TemporaryDirectory(prefix="simulacra-interview-")
        folder = Path(self._tmp.name) / "run"
        folder.mkdir()
        for name in COPIED:
            if (self.run_dir / name).is_dir():
                copy_run_part(self.run_dir / name, folder / name)  # a link in the run folder is refused
        run = self.snapshot.get("run", {})
        self._client = run_client(self.scenario, queue=True,
                                  cache=ResponseCache(self.run_dir / "interviews" / "llm-cache.jsonl"))
        setup = WorldSetup(scenario=self.scenario, llm=self._client, observers=[], run_dir=folder,
                           run_id=str(run.get("id") or self.run_dir.name))
        world = setup.build()
        restore(world, self._client, self.snapshot, where=self._snapshots.path(self.step))
        self._client.stats = LLMStats()  # the run's counters came with the snapshot; count the interview's
        self._respondents = {name: respondent(world, agent) for name, agent in world.by_name.items()}
        self._world = world
        return world

    def _client_(self) -> LLMClient:
        if self._client is None:
            msg = "the interview's world is not loaded"
            raise RuntimeError(msg)
        return self._client

    def _record(self, response: Response) -> dict[str, Any]:
        """Writes one answer to `out` (made on the first) and prints it with the memories it used."""
        record = {"question": response.question, "agent": response.agent, "step": self.step,
                  "answer": response.answer, "ok": response.ok, "error": response.error,
                  "memory_ids": [m.id for m in response.memories], "memories": [m.text for m in response.memories],
                  "model": self._client_().backend_for(response.agent).model_id, "seed": response.seed}
        if self._file is None:
            self.out.parent.mkdir(exist_ok=True)
            self._file = self.out.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        answer = response.answer if response.ok else f"(no answer: {response.error})"
        self.console.print(f"[bold]{escape(response.agent)}[/] (step {self.step}) - {escape(response.question)}\n"
                           f"  {escape(str(answer))}")
        for memory in response.memories:
            self.console.print(f"    [dim]{escape(memory.id)}: {escape(memory.text[:160])}[/]")
        return record

