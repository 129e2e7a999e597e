"""A process sandbox for LLM-written Python skills (Voyager-style agents).

A skill is a function ``skill(bot)`` that calls a world's skill API (``bot.mine("log")``). It never runs in
the simulation's process. The layers, outermost first:

1. A static check of the source (AST): syntax, the import allow-list, names and attributes that lead out of
   the language (anything ``_``-prefixed on an attribute, dunder names, ``eval``, ``open``, frame attributes,
   ``str.format``, whose fields read attributes by name).
2. A fresh interpreter (``python -I -S agents/sandbox_child.py``, not a fork), with an empty environment, an
   empty temporary working directory and only its three pipes open. It holds no world: `bot` is a proxy
   whose methods are JSON-lines calls to the parent, which runs only the names in ``api``.
3. Inside the child, before the skill is compiled: it drops root, sets rlimits (CPU, address space, no file
   writes, no new processes, no new descriptors), and gives the skill restricted builtins, a guarded
   ``__import__`` and public-only copies of the allowed modules.
4. The parent keeps a wall clock, caps message sizes and the number of calls, always kills and reaps the
   child, and turns every outcome into a `SandboxResult`: it never raises for a misbehaving skill.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

__all__ = ["DEFAULT_ALLOWED_IMPORTS", "DEFAULT_CPU_S", "DEFAULT_MAX_CALLS", "DEFAULT_MEMORY_MB", "DEFAULT_WALL_S",
           "STATUSES", "Sandbox", "SandboxResult", "format_result"]

DEFAULT_CPU_S = 5.0
DEFAULT_MEMORY_MB = 256
DEFAULT_WALL_S = 10.0
DEFAULT_MAX_CALLS = 10_000
DEFAULT_ALLOWED_IMPORTS = frozenset(
    {"math", "random", "itertools", "functools", "collections", "heapq", "re", "string", "json", "statistics"}
)
STATUSES = ("ok", "error", "timeout", "memory", "forbidden")
MAX_OUTPUT_CHARS = 4000
MAX_MESSAGE_BYTES = 1_000_000
MAX_CODE_CHARS = 100_000
MIN_MEMORY_MB = 64  # the child interpreter alone maps about 20 MiB
STDERR_TAIL_BYTES = 4000
FORBIDDEN_NAMES = frozenset(
    {"eval", "exec", "compile", "open", "globals", "locals", "vars", "getattr", "setattr", "delattr", "hasattr",
     "breakpoint", "input", "memoryview", "help", "exit", "quit", "type", "dir"}
)
# Public attributes that still lead to frames (and from there to any module) or to getattr-by-string.
FORBIDDEN_ATTRIBUTES = frozenset(
    {"gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await",
     "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next", "Formatter", "get_field"}
)
# str.format and format_map follow attributes named in the format string ("{0.__globals__}"), out of reach of
# the static check, which cannot read a string built at run time: skills format with f-strings instead.
FORMAT_ATTRIBUTES = frozenset({"format", "format_map"})
CHILD_SCRIPT = Path(__file__).resolve().with_name("sandbox_child.py")


@dataclass(frozen=True)
class SandboxResult:
    """What running one skill came to.

    Attributes:
        status: One of `STATUSES`: "ok", "error", "timeout", "memory" or "forbidden".
        message: One line; for an error ``Type: message (line N)``, for "forbidden" what was refused and where.
        output: What the skill printed, at most `MAX_OUTPUT_CHARS` characters.
        value: The entry function's return value (JSON-safe), or None.
        calls: Every API call in order: ``{"name", "args", "result"}`` or ``{"name", "args", "error"}``, with
            ``"kwargs"`` when keywords were passed.
        seconds: Wall-clock time of the run, static check included.
    """

    status: str
    message: str = ""
    output: str = ""
    value: Any = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-safe dict."""
        return asdict(self)


def format_result(result: SandboxResult) -> str:
    """The one JSON line ``run.py sandbox`` prints: status, message, output, value and calls."""
    data = result.to_dict()
    return json.dumps({key: data[key] for key in ("status", "message", "output", "value", "calls")})


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refusal(node: ast.AST, allowed_imports: frozenset[str]) -> str | None:
    """Why the static check refuses `node`, or None."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or "."]
        for module in modules:
            if getattr(node, "level", 0) or module not in allowed_imports:
                return f"import of {module!r} is not allowed; allowed: {', '.join(sorted(allowed_imports))}"
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            return next((_attribute_refusal(name) for name in names if _attribute_refusal(name)), None)
    if isinstance(node, ast.Attribute):
        return _attribute_refusal(node.attr)
    if isinstance(node, ast.MatchClass):  # ``case C(__class__=x)`` reads attributes by name
        return next((_attribute_refusal(name) for name in node.kwd_attrs if _attribute_refusal(name)), None)
    if isinstance(node, ast.Name) and (node.id.startswith("__") or node.id in FORBIDDEN_NAMES):
        return f"name {node.id!r} is not allowed"
    return None


def _attribute_refusal(name: str) -> str | None:
    if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        return f"attribute {name!r} is not allowed"
    if name in FORMAT_ATTRIBUTES:
        return f"attribute {name!r} is not allowed (a format string can read any attribute); use an f-string"
    return None


def _span(node: ast.AST) -> tuple[int, ...]:
    """Where a node starts, then where it ends: at one start, the innermost node sorts first."""
    return tuple(getattr(node, attr, None) or 0 for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"))


def _where(line: int | None, skill: str | None) -> str:
    return f" (line {line})" if skill is None else f" (line {line} of library skill {skill!r})"


def _check_source(
    source: str, skill: str | None, allowed_imports: frozenset[str], *, static: bool
) -> tuple[ast.Module | None, SandboxResult | None]:
    """Parses one source and, if `static`, checks it. Returns (tree, None) or (None, the refusal)."""
    if len(source) > MAX_CODE_CHARS:
        return None, SandboxResult("error", f"the source is {len(source)} characters; at most {MAX_CODE_CHARS}")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return None, SandboxResult("error", _one_line(f"SyntaxError: {err.msg}{_where(err.lineno, skill)}"))
    if static:
        refusals = [(_span(node), reason) for node in ast.walk(tree) if (reason := _refusal(node, allowed_imports))]
        if refusals:
            span, reason = min(refusals)  # the first in reading order, not in the walk's (outermost) order
            line = span[0]
            return None, SandboxResult("forbidden", _one_line(reason + _where(line, skill)))
    return tree, None


def _entry_name(tree: ast.Module, entry: str | None) -> tuple[str | None, str]:
    """The function to call, or (None, why not)."""
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    if entry is None and defined:
        return defined[0], ""
    if entry is None:
        return None, "the skill defines no function; define one that takes `bot`"
    if entry not in defined:
        return None, f"entry {entry!r} is not a function defined by the skill; it defines: {', '.join(defined)}"
    return entry, ""


class _Stop(Exception):  # noqa: N818 - internal control flow, never leaves this module
    def __init__(self, message: str, *, status: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Sandbox:
    r"""Runs LLM-written skills in a confined child interpreter; see the module docstring for the layers.

    Example:
        >>> skill = "def chop(bot):\n    return bot.mine('log')"
        >>> Sandbox(cpu_s=2).run(skill, {"mine": world.mine}).value
    """

    def __init__(
        self,
        *,
        cpu_s: float = DEFAULT_CPU_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        wall_s: float = DEFAULT_WALL_S,
        allowed_imports: frozenset[str] = DEFAULT_ALLOWED_IMPORTS,
        max_calls: int = DEFAULT_MAX_CALLS,
        static_check: bool = True,
    ) -> None:
        """Sets the limits.

        Args:
            cpu_s: CPU seconds the child may use (rounded up to whole seconds by the kernel limit).
            memory_mb: Address space of the child in MiB, at least `MIN_MEMORY_MB`.
            wall_s: Wall-clock seconds for the whole run, API calls included.
            allowed_imports: Top-level standard-library modules a skill may import.
            max_calls: API calls one run may make; the next one stops the run with "error".
            static_check: Check the source before running it. Turn off only to test the layers below.

        Raises:
            ValueError: If a limit is not positive, memory is below `MIN_MEMORY_MB`, or a module name is not a
                plain identifier.
        """
        if cpu_s <= 0 or wall_s <= 0 or max_calls <= 0 or memory_mb < MIN_MEMORY_MB:
            msg = (f"limits must be positive and memory_mb >= {MIN_MEMORY_MB}; got cpu_s={cpu_s!r}, "
                   f"wall_s={wall_s!r}, max_calls={max_calls!r}, memory_mb={memory_mb!r}")
            raise ValueError(msg)
        bad = sorted(name for name in allowed_imports if not name.isidentifier() or name.startswith("_"))
        if bad:
            msg = f"allowed_imports must be top-level module names like 'math'; got {bad!r}"
            raise ValueError(msg)
        self.cpu_s = cpu_s
        self.memory_mb = memory_mb
        self.wall_s = wall_s
        self.allowed_imports = frozenset(allowed_imports)
        self.max_calls = max_calls
        self.static_check = static_check

    def run(
        self,
        code: str,
        api: Mapping[str, Callable[..., Any]],
        *,
        entry: str | None = None,
        library: Mapping[str, str] | None = None,
    ) -> SandboxResult:
        """Checks `code`, runs it in a child process and calls ``entry(bot)``.

        Args:
            code: Source defining one or more functions.
            api: Method name -> callable, run in this process when the skill calls ``bot.<name>(...)``.
                Arguments and results must be JSON-safe.
            entry: The function to call; by default the first top-level function in `code`.
            library: Skill name -> source of verified skills, defined first in the same namespace.

        Returns:
            The result; every misbehaviour of the skill is a status, never an exception.

        Raises:
            ValueError: If an `api` name is not an identifier or starts with ``_``.
        """
        start = time.monotonic()
        bad = sorted(name for name in api if not str(name).isidentifier() or str(name).startswith("_"))
        if bad:
            msg = f"api names must be public identifiers like 'mine'; got {bad!r}"
            raise ValueError(msg)
        library = dict(library or {})
        for name, source in library.items():
            _, refused = _check_source(source, name, self.allowed_imports, static=self.static_check)
            if refused:
                return _finish(refused, start)
        tree, refused = _check_source(code, None, self.allowed_imports, static=self.static_check)
        if refused or tree is None:
            return _finish(refused or SandboxResult("error", "unparsable"), start)
        entry_name, why = _entry_name(tree, entry)
        if entry_name is None:
            return _finish(SandboxResult("error", why), start)
        limits = {"cpu_s": max(1, math.ceil(self.cpu_s)), "memory_mb": self.memory_mb, "max_output": MAX_OUTPUT_CHARS}
        job = {"code": code, "entry": entry_name, "library": library, "api": sorted(api),
               "allowed_imports": sorted(self.allowed_imports), "limits": limits}
        return _finish(_Session(self, api, start + self.wall_s).run(job), start)


def _finish(result: SandboxResult, start: float) -> SandboxResult:
    return replace(result, seconds=round(time.monotonic() - start, 3))


class _Session:
    """One child process: starts it, serves its API calls, reaps it, and says what happened."""

    def __init__(self, sandbox: Sandbox, api: Mapping[str, Callable[..., Any]], deadline: float) -> None:
        self.sandbox = sandbox
        self.api = api
        self.deadline = deadline
        self.calls: list[dict[str, Any]] = []
        self.pending = bytearray()
        self.stderr = bytearray()
        self.selector = selectors.DefaultSelector()
        self.eof = False
        self.killed = False

    def run(self, job: dict[str, Any]) -> SandboxResult:
        with tempfile.TemporaryDirectory(prefix="sandbox-") as cwd:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter and the child script
                [sys.executable, "-I", "-S", str(CHILD_SCRIPT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={}, cwd=cwd, close_fds=True, start_new_session=True,
            )
            # Anything raised past here (a bug, KeyboardInterrupt in an API call) must still kill the child.
            outcome: dict[str, Any] | _Stop | None = _Stop("the run was interrupted")
            try:
                for pipe in self._pipes():
                    os.set_blocking(pipe.fileno(), False)
                _, stdout, stderr = self._pipes()
                self.selector.register(stdout, selectors.EVENT_READ)
                self.selector.register(stderr, selectors.EVENT_READ)
                outcome = self._serve(job)
            except _Stop as stop:
                outcome = stop
            finally:
                cpu = self._reap(0.0 if isinstance(outcome, _Stop) else 2.0)
        return self._result(outcome, cpu)

    def _serve(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Sends the job and answers calls until the child reports (its message) or closes its output (None)."""
        self._send(job)
        while True:
            message = self._receive()
            if message is None or message.get("op") == "done":
                return message
            if message.get("op") != "call":
                msg = _one_line(f"protocol error: unexpected message {message!r}", 200)
                raise _Stop(msg)
            if len(self.calls) >= self.sandbox.max_calls:
                msg = f"the skill made more than {self.sandbox.max_calls} API calls"
                raise _Stop(msg)
            self._send(self._call(message))

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Runs one API call in this process and builds the reply."""
        name, args, kwargs = message.get("name"), message.get("args"), message.get("kwargs") or {}
        if not (isinstance(name, str) and isinstance(args, list) and isinstance(kwargs, dict)):
            msg = "protocol error: malformed call"
            raise _Stop(msg)
        record: dict[str, Any] = {"name": name, "args": args} | ({"kwargs": kwargs} if kwargs else {})
        self.calls.append(record)
        try:
            if name not in self.api:
                msg = f"bot has no method {name!r}; it has: {', '.join(sorted(self.api))}"
                raise AttributeError(msg)
            encoded = json.dumps(self.api[name](*args, **kwargs))
            if len(encoded) > MAX_MESSAGE_BYTES:
                msg = f"the result of bot.{name} is {len(encoded)} bytes; at most {MAX_MESSAGE_BYTES}"
                raise ValueError(msg)
        except Exception as err:  # noqa: BLE001 - an API failure is sent to the skill, which may handle it
            record["error"] = _one_line(f"{type(err).__name__}: {err}")
            return {"error": _one_line(str(err)), "type": type(err).__name__}
        record["result"] = json.loads(encoded)
        return {"result": record["result"]}

    def _send(self, message: dict[str, Any]) -> None:
        data = memoryview(json.dumps(message).encode() + b"\n")
        fd = self._pipes()[0].fileno()
        with selectors.DefaultSelector() as writable:
            writable.register(fd, selectors.EVENT_WRITE)
            while data:
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    if not writable.select(self._remaining()):
                        self._remaining()  # raises once the deadline has passed
                except BrokenPipeError:
                    return  # the child is gone; reading its output says why

    def _receive(self) -> dict[str, Any] | None:
        """The next JSON line from the child, or None once it closes its output."""
        while b"\n" not in self.pending:
            if len(self.pending) > MAX_MESSAGE_BYTES:
                msg = f"a message from the skill exceeds {MAX_MESSAGE_BYTES} bytes"
                raise _Stop(msg)
            if self.eof:
                return None
            for key, _ in self.selector.select(self._remaining()):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    self.selector.unregister(key.fileobj)
                    self.eof = self.eof or key.fileobj is self.proc.stdout
                elif key.fileobj is self.proc.stdout:
                    self.pending += chunk
                else:
                    self.stderr = (self.stderr + chunk)[-STDERR_TAIL_BYTES:]
        line, _, rest = bytes(self.pending).partition(b"\n")
        self.pending = bytearray(rest)
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            msg = _one_line(f"protocol error: not a JSON object: {line[:100]!r}", 200)
            raise _Stop(msg)
        return message

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            msg = f"wall-clock limit of {self.sandbox.wall_s}s exceeded"
            raise _Stop(msg, status="timeout")
        return left

    def _reap(self, grace: float) -> float:
        """Waits up to `grace` seconds for the child to exit, then kills it; reaps it. Returns its CPU seconds."""
        self.selector.close()
        end = time.monotonic() + grace
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            while not pid and time.monotonic() < end:
                time.sleep(0.01)
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if not pid:
                self._kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): nothing is left to wait for
            self.proc.returncode = 0
            return 0.0
        finally:
            self._drain_stderr()
            for pipe in self._pipes():
                pipe.close()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return usage.ru_utime + usage.ru_stime

    def _drain_stderr(self) -> None:
        """Keeps the tail of what the interpreter wrote to stderr after its output closed."""
        with contextlib.suppress(OSError):
            for _ in range(64):  # a pipe holds 64 KiB: this bounds the loop
                chunk = os.read(self._pipes()[2].fileno(), 65536)
                if not chunk:
                    return
                self.stderr = (self.stderr + chunk)[-STDERR_TAIL_BYTES:]

    def _pipes(self) -> tuple[IO[bytes], IO[bytes], IO[bytes]]:
        """The child's stdin, stdout and stderr (all three opened as pipes, so never None)."""
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        if stdin is None or stdout is None or stderr is None:
            msg = "the sandbox child was started without its pipes"
            raise RuntimeError(msg)
        return stdin, stdout, stderr

    def _kill(self) -> None:
        self.killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            self.proc.kill()

    def _result(self, outcome: dict[str, Any] | _Stop | None, cpu: float) -> SandboxResult:
        if isinstance(outcome, _Stop):
            return SandboxResult(outcome.status, outcome.message, calls=self.calls)
        if outcome is None:
            return SandboxResult(*self._death(cpu), calls=self.calls)
        status = outcome.get("status")
        if status not in STATUSES:
            return SandboxResult("error", _one_line(f"protocol error: status {status!r}", 200), calls=self.calls)
        output = str(outcome.get("output", ""))[:MAX_OUTPUT_CHARS]
        return SandboxResult(status, _one_line(outcome.get("message", "")), output, outcome.get("value"), self.calls)

    def _death(self, cpu: float) -> tuple[str, str]:
        """Status and message for a child that ended without reporting."""
        code = self.proc.returncode
        cpu_limit = max(1, math.ceil(self.sandbox.cpu_s))
        tail = self.stderr.decode(errors="replace").strip().splitlines()
        last = tail[-1] if tail else ""
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        if code == -signal.SIGXCPU or cpu >= cpu_limit - 0.05:
            return "timeout", f"CPU limit of {cpu_limit}s exceeded ({how})"
        if code == -signal.SIGXFSZ:
            return "forbidden", f"the skill tried to write a file ({how})"
        if (code == -signal.SIGKILL and not self.killed) or "MemoryError" in last or "allocate memory" in last:
            return "memory", _one_line(f"memory limit of {self.sandbox.memory_mb} MiB exceeded ({how}) {last}")
        return "error", _one_line(f"the sandbox ended without a result ({how}) {last}")
