"""The child side of `agents.sandbox`: runs one skill in a fresh, confined interpreter.

Started by `Sandbox.run` as ``python -I -S sandbox_child.py``. It imports only the standard library,
never the project: the child must hold nothing but the skill and a pipe to the parent.

Protocol (JSON lines). The first line on stdin is the job::

    {"code": str, "entry": str, "library": {name: source}, "api": [name, ...],
     "allowed_imports": [module, ...], "limits": {"cpu_s": int, "memory_mb": int, "max_output": int}}

Then the child writes ``{"op": "call", "name", "args", "kwargs"}`` for each API call and reads back
``{"result": value}`` or ``{"error": message, "type": exception name}``. It ends with one
``{"op": "done", "status", "message", "output", "value"}`` and exits.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import builtins  # noqa: E402 - after the bytecode switch
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any, BinaryIO  # noqa: E402

NOBODY = 65534
SAFE_BUILTINS = (
    "abs all any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod enumerate filter "
    "float format frozenset hash hex id int isinstance issubclass iter len list map max min next object oct ord "
    "pow print property range repr reversed round set slice sorted staticmethod str sum super tuple zip "
    "ArithmeticError AssertionError AttributeError Exception IndexError KeyError LookupError NameError "
    "ImportError NotImplementedError OverflowError RecursionError RuntimeError StopIteration TypeError ValueError "
    "ZeroDivisionError Ellipsis NotImplemented False None True"
).split()


class SandboxViolation(ImportError):  # noqa: N818 - the name the skill sees
    """The skill reached for something the sandbox refuses (a module outside the allow-list)."""


class APIError(Exception):
    """An API call failed in the parent; the concrete class also derives from the parent's exception type."""


class Channel:
    """The RPC pipe to the parent. Writes go straight to the file descriptor, so a signal handler can use it."""

    def __init__(self, rpc_in: BinaryIO, out_fd: int) -> None:
        self._in = rpc_in
        self._out = out_fd
        self.busy = False

    def send(self, message: dict[str, Any]) -> None:
        """Writes one JSON line."""
        data = json.dumps(message).encode() + b"\n"
        self.busy = True
        while data:
            data = data[os.write(self._out, data) :]
        self.busy = False

    def receive(self) -> dict[str, Any]:
        """Reads one JSON line; an empty dict when the parent has gone."""
        line = self._in.readline()
        return json.loads(line) if line else {}


class Capture:
    """Stands in for sys.stdout: keeps the first `limit` characters printed and drops the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        """Keeps what still fits."""
        if self.size < self.limit:
            kept = str(text)[: self.limit - self.size]
            self.parts.append(kept)
            self.size += len(kept)
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""

    def getvalue(self) -> str:
        """Everything kept."""
        return "".join(self.parts)


def public_module(name: str) -> types.ModuleType:
    """Imports `name` and returns a copy holding only its public, non-module attributes.

    Modules re-export what they import (``statistics.sys``, ``json.codecs``); the copy drops those.
    """
    module = __import__(name)
    copy = types.ModuleType(name, module.__doc__)
    for attr, value in vars(module).items():
        if not attr.startswith("_") and not isinstance(value, types.ModuleType):
            setattr(copy, attr, value)
    return copy


def confine(limits: dict[str, int]) -> None:
    """Closes stray descriptors, drops root, and sets the resource limits. Raises if any step fails."""
    os.closerange(3, 1 << 16)
    if os.geteuid() == 0:
        # RLIMIT_NPROC does not bind root; an unprivileged uid makes fork and threads fail.
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    cpu = limits["cpu_s"]
    memory = limits["memory_mb"] * 1024 * 1024
    for kind, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_FSIZE, 0, 0),
        (resource.RLIMIT_NPROC, 0, 0),
        # Descriptors 0-2 are the pipes; any new one (file, socket, pipe) would be number 3.
        (resource.RLIMIT_NOFILE, 3, 3),
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
    ):
        resource.setrlimit(kind, (soft, hard))


def make_importer(modules: dict[str, types.ModuleType]) -> Callable[..., types.ModuleType]:
    """Returns the ``__import__`` the skill gets: the allow-list only, as public copies."""

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Iterable[str] = (), level: int = 0
    ) -> types.ModuleType:
        if level or name not in modules:
            msg = f"import of {name!r} is not allowed; allowed: {', '.join(sorted(modules))}"
            raise SandboxViolation(msg)
        return modules[name]

    return guarded_import


def make_bot(names: list[str], channel: Channel) -> object:
    """Builds the `bot` proxy: each method sends one call to the parent and waits for its answer."""
    errors: dict[str, type[Exception]] = {}

    def error_type(name: str) -> type[Exception]:
        base = getattr(builtins, name, None) if name in SAFE_BUILTINS else None
        if not (isinstance(base, type) and issubclass(base, Exception)):
            return APIError
        if name not in errors:
            errors[name] = type(name, (APIError, base), {})
        return errors[name]

    def method(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                channel.send({"op": "call", "name": name, "args": list(args), "kwargs": kwargs})
            except (TypeError, ValueError) as err:
                msg = f"arguments of bot.{name} must be JSON-safe: {err}"
                raise TypeError(msg) from None
            reply = channel.receive()
            if not reply:  # the parent has gone (it killed us, or stopped serving): nothing left to do
                os._exit(1)
            if "error" in reply:
                raise error_type(reply.get("type", ""))(reply["error"])
            return reply.get("result")

        call.__name__ = name
        return call

    class Bot:
        """The skill API. Only these methods reach the world, through the parent."""

        def __getattr__(self, attr: str) -> Any:
            msg = f"bot has no method {attr!r}; it has: {', '.join(names)}"
            raise AttributeError(msg)

        def __repr__(self) -> str:
            return f"<bot: {', '.join(names)}>"

    bot = Bot()
    for name in names:
        setattr(bot, name, method(name))
    return bot


def where(err: BaseException) -> str:
    """The skill line an exception came from, as `` (line N)`` or `` (line N of library skill 'x')``."""
    found = ""
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == "<skill>":
            found = f" (line {tb.tb_lineno})"
        elif filename.startswith("<library:"):
            found = f" (line {tb.tb_lineno} of library skill {filename[9:-1]!r})"
        tb = tb.tb_next
    if not found and isinstance(err, SyntaxError) and err.lineno:
        found = f" (line {err.lineno})" if err.filename == "<skill>" else f" (line {err.lineno} of {err.filename})"
    return found


def describe(err: BaseException) -> tuple[str, str]:
    """The status and the one-line message for an exception that left the skill."""
    if isinstance(err, SandboxViolation):
        return "forbidden", f"{err}{where(err)}"
    if isinstance(err, MemoryError):
        return "memory", f"MemoryError: memory limit exceeded{where(err)}"
    name = type(err).__name__
    text = str(err.msg if isinstance(err, SyntaxError) else err)
    return "error", f"{name}: {text}{where(err)}" if text else f"{name}{where(err)}"


def execute(job: dict[str, Any], namespace: dict[str, Any], bot: object) -> tuple[str, str, Any]:
    """Defines the library and the skill, calls the entry. Returns (status, message, value)."""
    try:
        for name, source in job["library"].items():
            exec(compile(source, f"<library:{name}>", "exec"), namespace)
        exec(compile(job["code"], "<skill>", "exec"), namespace)
        entry = namespace.get(job["entry"])
        if not callable(entry):
            return "error", f"entry {job['entry']!r} is not a function defined by the skill", None
        value = entry(bot)
    except BaseException as err:  # noqa: BLE001 - whatever the skill raises is its result
        status, message = describe(err)
        del err  # frees the skill's frames (and any memory they hold) before the reply is built
        return status, message, None
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return "error", f"TypeError: {job['entry']} returned a {type(value).__name__}, which is not JSON-safe", None
    return "ok", "", value


def main() -> None:
    """Reads the job, confines itself, runs the skill and reports."""
    channel = Channel(sys.stdin.buffer, sys.stdout.fileno())
    job = json.loads(sys.stdin.buffer.readline())
    capture = Capture(job["limits"]["max_output"])

    def done(status: str, message: str, value: Any = None) -> None:
        channel.send({"op": "done", "status": status, "message": message, "output": capture.getvalue(), "value": value})
        os._exit(0)

    def on_cpu_limit(signum: int, frame: object) -> None:
        if channel.busy:  # mid-write: a second message would garble the line; the parent reads the rusage
            os._exit(1)
        done("timeout", f"CPU limit of {job['limits']['cpu_s']}s exceeded")

    try:
        # Imported while files can still be opened; the skill gets them from this dict.
        modules = {name: public_module(name) for name in job["allowed_imports"]}
        signal.signal(signal.SIGXCPU, on_cpu_limit)
        confine(job["limits"])
    except Exception as err:  # noqa: BLE001 - fail closed: nothing runs unconfined
        done("error", f"could not prepare the sandbox: {type(err).__name__}: {err}")
    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe |= {"__import__": make_importer(modules), "__build_class__": builtins.__build_class__, "APIError": APIError}
    namespace = {"__builtins__": safe, "__name__": "skill"}
    sys.stdout = capture  # stderr stays the pipe, for what the interpreter itself reports
    done(*execute(job, namespace, make_bot(job["api"], channel)))


if __name__ == "__main__":
    main()
