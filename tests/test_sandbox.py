import json
import os
import re
from pathlib import Path
from textwrap import dedent

import pytest

from simulacra.agents.sandbox import MAX_OUTPUT_CHARS, Sandbox, SandboxResult, format_result

ALLOWED = "collections, functools, heapq, itertools, json, math, random, re, statistics, string"
# With the static check off, the real builtins module is one attribute away: this is how the tests
# below reach open, __import__ and os, to show the process layer holds on its own.
REAL = "print.__self__"


def world():
    inventory = {"log": 0, "planks": 0}

    def mine(name):
        if name == "stone":
            raise ValueError("no stone nearby")
        inventory[name] = inventory.get(name, 0) + 1
        return inventory[name]

    def craft(name, count=1):
        inventory[name] = inventory.get(name, 0) + count
        return count

    return {"mine": mine, "craft": craft, "inventory": lambda: dict(inventory)}


def run(code, *, api=None, **options):
    kwargs = {key: options.pop(key) for key in ("entry", "library") if key in options}
    return Sandbox(**{"cpu_s": 1, "wall_s": 5} | options).run(dedent(code), world() if api is None else api, **kwargs)


def own_children():
    """Processes (zombies included) whose parent is this test process."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            children.append((stat.parent.name, fields[0]))
    return children


# --- ordinary skills ---------------------------------------------------------------------------------------


def test_skill_calls_the_api_returns_its_value_and_prints_are_captured() -> None:
    result = run("""
        import math

        def chop(bot):
            for _ in range(2):
                bot.mine("log")
            bot.craft("planks", count=4)
            print("chopped", math.floor(2.5))
            return bot.inventory()
    """)
    assert (result.status, result.message) == ("ok", "")
    assert result.value == {"log": 2, "planks": 4}
    assert result.output == "chopped 2\n"
    assert result.calls == [
        {"name": "mine", "args": ["log"], "result": 1},
        {"name": "mine", "args": ["log"], "result": 2},
        {"name": "craft", "args": ["planks"], "kwargs": {"count": 4}, "result": 4},
        {"name": "inventory", "args": [], "result": {"log": 2, "planks": 4}},
    ]
    assert 0 < result.seconds < 5


def test_entry_defaults_to_the_first_function_and_can_be_named() -> None:
    code = "def first(bot):\n    return 1\ndef second(bot):\n    return 2\n"
    assert run(code).value == 1
    assert run(code, entry="second").value == 2
    missing = run(code, entry="third")
    assert (missing.status, missing.message) == (
        "error", "entry 'third' is not a function defined by the skill; it defines: first, second")
    assert run("x = 1\n").message == "the skill defines no function; define one that takes `bot`"


def test_a_skill_calls_a_library_skill() -> None:
    library = {"craft_planks": "def craft_planks(bot):\n    bot.mine('log')\n    return bot.craft('planks', 4)\n"}
    result = run("""
        def make_sticks(bot):
            planks = craft_planks(bot)
            return bot.craft("stick", planks // 2)
    """, library=library)
    assert (result.status, result.value) == ("ok", 2)
    assert [call["name"] for call in result.calls] == ["mine", "craft", "craft"]


def test_an_api_error_is_catchable_in_the_skill() -> None:
    result = run("""
        def dig(bot):
            try:
                bot.mine("stone")
            except ValueError as err:
                print("no luck:", err)
                return "fallback"
    """)
    assert (result.status, result.value, result.output) == ("ok", "fallback", "no luck: no stone nearby\n")
    assert result.calls == [{"name": "mine", "args": ["stone"], "error": "ValueError: no stone nearby"}]


def test_an_uncaught_api_error_is_an_error_with_its_message_and_line() -> None:
    result = run("def dig(bot):\n    bot.mine('log')\n    bot.mine('stone')\n")
    assert (result.status, result.message) == ("error", "ValueError: no stone nearby (line 3)")
    assert [call.get("error") for call in result.calls] == [None, "ValueError: no stone nearby"]


def test_an_error_inside_a_library_skill_names_it() -> None:
    result = run("def f(bot):\n    return helper(bot)\n", library={"helper": "def helper(bot):\n    return 1 / 0\n"})
    assert result.message == "ZeroDivisionError: division by zero (line 2 of library skill 'helper')"


@pytest.mark.parametrize(("code", "library", "message"), [
    ("def f(bot):\n    x = (\n", None, "SyntaxError: '(' was never closed (line 2)"),
    ("def f(bot):\n    return g(bot)\n", {"g": "def g(bot)\n    pass\n"},
     "SyntaxError: expected ':' (line 1 of library skill 'g')"),
])
def test_a_syntax_error_is_reported_with_its_line(code, library, message) -> None:
    result = run(code, library=library)
    assert (result.status, result.message, result.calls) == ("error", message, [])


@pytest.mark.parametrize(("code", "message"), [
    ("def f(bot):\n    bot.fly()\n",
     "AttributeError: bot has no method 'fly'; it has: craft, inventory, mine (line 2)"),
    ("def f(bot):\n    bot.mine({1})\n",
     "TypeError: arguments of bot.mine must be JSON-safe: Object of type set is not JSON serializable (line 2)"),
    ("def f(bot):\n    return {1}\n", "TypeError: f returned a set, which is not JSON-safe"),
    ("def f(bot):\n    return f(bot)\n", "RecursionError: maximum recursion depth exceeded (line 2)"),
])
def test_misuse_of_the_api_or_the_return_value_is_an_error(code, message) -> None:
    result = run(code)
    assert (result.status, result.message, result.value) == ("error", message, None)


def test_result_to_dict_and_format_result_give_one_json_line() -> None:
    result = run("def f(bot):\n    print('a\\nb')\n    return bot.mine('log')\n")
    line = format_result(result)
    assert "\n" not in line
    assert json.loads(line) == {"status": "ok", "message": "", "output": "a\nb\n", "value": 1,
                                "calls": [{"name": "mine", "args": ["log"], "result": 1}]}
    assert result.to_dict() == json.loads(line) | {"seconds": result.seconds}
    assert SandboxResult(**result.to_dict()) == result


@pytest.mark.parametrize(("options", "message"), [
    ({"cpu_s": 0}, "limits must be positive and memory_mb >= 64; got cpu_s=0, wall_s=10.0, max_calls=10000, "
                   "memory_mb=256"),
    ({"memory_mb": 16}, "memory_mb=16"),
    ({"allowed_imports": frozenset({"os.path"})}, "allowed_imports must be top-level module names like 'math'; "
                                                  "got ['os.path']"),
])
def test_bad_limits_are_refused(options, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Sandbox(**options)


def test_private_api_names_are_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("api names must be public identifiers like 'mine'; got ['_x']")):
        Sandbox().run("def f(bot):\n    pass\n", {"_x": print})


# --- hostile skills: the static check ---------------------------------------------------------------------

FORBIDDEN = [
    ("def f(bot):\n    return open('/etc/passwd').read()\n", "name 'open' is not allowed (line 2)"),
    ("def f(bot):\n    open('pwned.txt', 'w').write('x')\n", "name 'open' is not allowed (line 2)"),
    ("import socket\ndef f(bot):\n    socket.socket().connect(('example.com', 80))\n",
     f"import of 'socket' is not allowed; allowed: {ALLOWED} (line 1)"),
    ("def f(bot):\n    import subprocess\n    subprocess.run(['true'])\n",
     f"import of 'subprocess' is not allowed; allowed: {ALLOWED} (line 2)"),
    ("def f(bot):\n    from os import system\n    system('true')\n",
     f"import of 'os' is not allowed; allowed: {ALLOWED} (line 2)"),
    ("import os\ndef f(bot):\n    while True:\n        os.fork()\n",
     f"import of 'os' is not allowed; allowed: {ALLOWED} (line 1)"),
    *[(f"def f(bot):\n    import {module}\n", f"import of {module!r} is not allowed; allowed: {ALLOWED} (line 2)")
      for module in ("os", "sys", "ctypes", "importlib", "subprocess", "socket")],
    ("import os.path\ndef f(bot):\n    pass\n", f"import of 'os.path' is not allowed; allowed: {ALLOWED} (line 1)"),
    ("from . import x\ndef f(bot):\n    pass\n", f"import of '.' is not allowed; allowed: {ALLOWED} (line 1)"),
    ("def f(bot):\n    return ().__class__.__bases__[0].__subclasses__()\n",
     "attribute '__class__' is not allowed (line 2)"),
    ("def f(bot):\n    return f.__globals__\n", "attribute '__globals__' is not allowed (line 2)"),
    ("def f(bot):\n    return __builtins__['open']\n", "name '__builtins__' is not allowed (line 2)"),
    ("def f(bot):\n    return __import__('os')\n", "name '__import__' is not allowed (line 2)"),
    ("import random\ndef f(bot):\n    return random._os\n", "attribute '_os' is not allowed (line 3)"),
    ("from random import _os\ndef f(bot):\n    pass\n", "attribute '_os' is not allowed (line 1)"),
    *[(f"def f(bot):\n    return {name}('1')\n", f"name {name!r} is not allowed (line 2)")
      for name in ("eval", "exec", "compile", "globals", "getattr", "vars", "breakpoint", "input", "type")],
    ("def f(bot):\n    e = eval\n    return e('1')\n", "name 'eval' is not allowed (line 2)"),
    ("import math\ndef f(bot):\n    x = math.pi\n    if x:\n        return x.__class__\n    import os\n",
     "attribute '__class__' is not allowed (line 5)"),
    ("def f(bot):\n    def g():\n        yield g.gi_frame.f_back\n", "attribute 'gi_frame' is not allowed (line 3)"),
    ("def f(bot):\n    try:\n        1 / 0\n    except Exception as e:\n        return e.args, tb.tb_frame.f_back\n",
     "attribute 'tb_frame' is not allowed (line 5)"),
    ("import string\ndef f(bot):\n    return string.Formatter()\n",
     "attribute 'Formatter' is not allowed (line 3)"),
    ("def f(bot):\n    match bot:\n        case object(__class__=c):\n            return c\n",
     "attribute '__class__' is not allowed (line 3)"),
]


@pytest.mark.parametrize(("code", "message"), FORBIDDEN)
def test_the_static_check_refuses_before_anything_runs(code, message) -> None:
    api = {"mine": lambda name: pytest.fail("the API must not be reached")}
    result = run(code, api=api)
    assert (result.status, result.message, result.calls) == ("forbidden", message, [])


def test_a_library_skill_is_checked_too() -> None:
    result = run("def f(bot):\n    pass\n", library={"evil": "import os\n"})
    assert result.message == f"import of 'os' is not allowed; allowed: {ALLOWED} (line 1 of library skill 'evil')"


# --- hostile skills: the process layer, with the static check off ----------------------------------------

EMFILE = "OSError: [Errno 24] Too many open files"
EAGAIN = "BlockingIOError: [Errno 11] Resource temporarily unavailable"


@pytest.mark.parametrize(("body", "message"), [
    ("return open('/etc/passwd').read()", "NameError: name 'open' is not defined (line 2)"),
    ("return __import__('os')", "import of 'os' is not allowed; allowed: " + ALLOWED + " (line 2)"),
    ("import ctypes", f"import of 'ctypes' is not allowed; allowed: {ALLOWED} (line 2)"),
    ("import statistics\n    return statistics.sys",
     "AttributeError: module 'statistics' has no attribute 'sys' (line 3)"),
    ("return eval('1')", "NameError: name 'eval' is not defined (line 2)"),
])
def test_restricted_builtins_and_modules_hold_without_the_static_check(body, message) -> None:
    result = run(f"def f(bot):\n    {body}\n", static_check=False)
    assert result.message == message
    assert result.status == ("forbidden" if message.startswith("import of") else "error")


@pytest.mark.parametrize(("body", "message"), [
    (f"return {REAL}.open('/etc/passwd').read()", f"{EMFILE}: '/etc/passwd' (line 2)"),
    (f"return {REAL}.__import__('socket').socket()", EMFILE),
    (f"return {REAL}.__import__('os').pipe()", f"{EMFILE} (line 2)"),
    (f"os = {REAL}.__import__('os')\n    while True:\n        os.fork()", f"{EAGAIN} (line 4)"),
    # A generator's frame leads to the child's own globals, where the real os lives.
    ("def g():\n        yield gen.gi_frame.f_back.f_back.f_globals['os']\n    gen = g()\n    return next(gen).fork()",
     f"{EAGAIN} (line 5)"),
])
def test_the_os_layer_holds_without_the_static_check(body, message) -> None:
    result = run(f"def f(bot):\n    {body}\n", static_check=False)
    assert result.status == "error"
    assert result.message.startswith(message)


@pytest.mark.parametrize(("body", "status", "message"), [
    ("os.write(2, b'boom\\n')\n    os._exit(3)", "error", "the sandbox ended without a result (exit status 3) boom"),
    ("os.abort()", "error", "the sandbox ended without a result (killed by SIGABRT)"),
    ("os.kill(os.getpid(), 9)", "memory", "memory limit of 256 MiB exceeded (killed by SIGKILL)"),
])
def test_a_child_that_dies_is_reported(body, status, message) -> None:
    code = f"def f(bot):\n    os = {REAL}.__import__('os')\n    bot.mine('log')\n    {body}\n"
    result = run(code, static_check=False)
    assert (result.status, result.message, len(result.calls)) == (status, message, 1)


def test_files_cannot_be_written_without_the_static_check(tmp_path) -> None:
    target = tmp_path / "pwned.txt"
    result = run(f"def f(bot):\n    {REAL}.open({str(target)!r}, 'w').write('x')\n", static_check=False)
    assert (result.status, result.message) == ("error", f"{EMFILE}: {str(target)!r} (line 2)")
    assert not target.exists()


def test_no_process_can_be_spawned_without_the_static_check(tmp_path) -> None:
    target = tmp_path / "spawned"
    escape = "[c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == '_wrap_close'][0]"
    result = run(f"""
        def f(bot):
            system = {escape}.__init__.__globals__['system']
            return system('touch {target}')
    """, static_check=False)
    # glibc's system() returns exit code 127 when it cannot create the shell.
    assert (result.status, result.value) == ("ok", 127 << 8)
    assert not target.exists()


def test_the_child_runs_without_root_in_an_empty_environment() -> None:
    result = run(f"def f(bot):\n    os = {REAL}.__import__('os')\n    return [os.geteuid(), dict(os.environ)]\n",
                 static_check=False)
    assert result.status == "ok"
    assert result.value[0] != 0
    assert "PATH" not in result.value[1]


# --- hostile skills: limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["while True:\n        pass", "x = 10 ** 10 ** 8"])
def test_a_cpu_hog_times_out(body) -> None:
    result = run(f"def f(bot):\n    print('start')\n    {body}\n")
    assert result.status == "timeout"
    assert result.message.startswith("CPU limit of 1s exceeded")
    assert result.seconds < 4


def test_a_skill_that_waits_on_the_world_hits_the_wall_clock() -> None:
    api = {"wait": lambda: __import__("time").sleep(0.1)}
    result = run("def f(bot):\n    while True:\n        bot.wait()\n", api=api, cpu_s=5, wall_s=1)
    assert (result.status, result.message) == ("timeout", "wall-clock limit of 1s exceeded")
    assert 5 <= len(result.calls) <= 11
    assert result.seconds < 2


@pytest.mark.parametrize(("body", "line"), [
    ("x = [0] * 10 ** 10", 2),
    ("x = []\n    while True:\n        x.append(' ' * 10 ** 6)", 4),
])
def test_a_memory_bomb_hits_the_memory_limit(body, line) -> None:
    result = run(f"def f(bot):\n    {body}\n", memory_mb=64)
    assert (result.status, result.message) == ("memory", f"MemoryError: memory limit exceeded (line {line})")


def test_too_many_api_calls_stop_the_run() -> None:
    result = run("def f(bot):\n    while True:\n        bot.inventory()\n", max_calls=20)
    assert (result.status, result.message) == ("error", "the skill made more than 20 API calls")
    assert len(result.calls) == 20


def test_an_oversized_message_stops_the_run() -> None:
    result = run("def f(bot):\n    bot.mine('x' * 10 ** 7)\n")
    assert (result.status, result.message, result.calls) == (
        "error", "a message from the skill exceeds 1000000 bytes", [])


def test_printed_output_is_truncated() -> None:
    result = run("def f(bot):\n    for _ in range(10000):\n        print('x' * 100)\n")
    assert (result.status, len(result.output)) == ("ok", MAX_OUTPUT_CHARS)


def test_every_child_is_reaped_and_the_parent_is_unaffected(tmp_path) -> None:
    cwd, environ = os.getcwd(), dict(os.environ)
    before = set(own_children())  # in a full session other helpers (e.g. multiprocessing's tracker) may run
    for code in ("def f(bot):\n    while True:\n        pass\n", "def f(bot):\n    x = [0] * 10 ** 10\n",
                 f"def f(bot):\n    {REAL}.__import__('os').fork()\n"):
        run(code, static_check=False)
    assert set(own_children()) - before == set()
    assert (os.getcwd(), dict(os.environ)) == (cwd, environ)
