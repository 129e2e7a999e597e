"""Bounded reading of the files users hand us: scenarios, question sets, skill files, run folders.

Whatever a file holds, reading it costs little and fails with one `ScenarioError` line naming the file (and the
line) and what to do: `read_text` refuses files over a size limit before reading them all and text that is not
UTF-8; `load_yaml` counts aliases, nesting and values from the parser's event stream before anything is built
(so a few hundred bytes of "billion laughs" stay a few hundred bytes); `load_json` turns deep nesting and
malformed text into the same kind of line.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from simulacra.errors import ScenarioError

__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "load_json", "load_yaml", "read_text"]

MAX_BYTES = 1_000_000  # a scenario or a skill file is a few kB
MAX_ALIASES = 100  # uses of *name in one document
MAX_DEPTH = 50  # nested sequences and mappings, aliases expanded
MAX_VALUES = 25_000  # scalars and collections, each alias use counted again; about 3,500 agents

# libyaml (the C parser) is 10-20x faster than the pure-Python one; PyYAML without it still works.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PYTHON_MESSAGE_BYTES = 20_000  # below this, re-parse a bad text in Python for its clearer message
_MERGE = "tag:yaml.org,2002:merge"
# What YAML 1.1 allows in a stream (the reader's rule): tab, newlines and printable Unicode.
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def read_text(path: str | Path, *, what: str, limit: int = MAX_BYTES, regular: bool = False) -> str:
    """Reads a UTF-8 text file of at most ``limit`` bytes.

    The size is checked before reading (a regular file's size, then at most ``limit + 1`` bytes of anything
    else), so a huge file or ``/dev/zero`` costs nothing. A leading byte-order mark is dropped.

    Args:
        path: The file.
        what: What the file is, for messages: "scenario", "question file", "skill file".
        limit: The most bytes accepted.
        regular: Refuse anything but a regular file (a FIFO would block the read until someone writes to it).

    Returns:
        The text.

    Raises:
        ScenarioError: One line: the file is missing, a folder, not a regular file (with ``regular``),
            unreadable, too big, binary or not UTF-8.
    """
    path = Path(path)
    name = _shown(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            msg = f"{name}: cannot read the {what} (it is a folder); give the path of a file"
            raise ScenarioError(msg)
        if regular and not stat.S_ISREG(mode):
            msg = f"{name}: cannot read the {what} (it is {_special(mode)}, not a regular file); give a text file"
            raise ScenarioError(msg)
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = b"" if size > limit else file.read(limit + 1)
    except OSError as err:
        raise ScenarioError(_os_problem(err, name, what)) from err
    except ValueError as err:  # os.stat refuses a path holding a NUL character
        msg = f"{name}: cannot read the {what} ({err}); give the path of a file"
        raise ScenarioError(msg) from err
    if size > limit or len(data) > limit:
        got = f"{size:,} bytes, more than" if size > limit else "more than"
        msg = f"{name}: the {what} is {got} the {limit:,} bytes allowed; give a smaller file"
        raise ScenarioError(msg)
    return _decode(data, name, what)


def _special(mode: int) -> str:
    """What a file that is neither a folder nor a regular file is, for messages."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def _os_problem(err: OSError, name: str, what: str) -> str:
    fixes = {FileNotFoundError: "check the path", IsADirectoryError: "give the path of a file",
             PermissionError: "make it readable (chmod u+r) or give another file"}
    fix = fixes.get(type(err), "give the path of a readable file")
    return f"{name}: cannot read the {what} ({err.strerror or err}); {fix}"


def _decode(data: bytes, name: str, what: str) -> str:
    nul = data.find(b"\0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if 0 <= nul < err.start:
            nul_problem = _nul_problem(data, nul, name, what)
            raise ScenarioError(nul_problem) from None
        line = data.count(b"\n", 0, err.start) + 1
        msg = (f"{name}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start:,}); "
               f"save the {what} as UTF-8")
        raise ScenarioError(msg) from None
    if nul >= 0:
        raise ScenarioError(_nul_problem(data, nul, name, what))
    return text.removeprefix("\ufeff")


def _nul_problem(data: bytes, offset: int, name: str, what: str) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"{name}:{line}: not text (a NUL byte at offset {offset:,}); give the {what} as a UTF-8 text file"


def load_yaml(
    text: str, path: str | Path, *, max_aliases: int = MAX_ALIASES, max_depth: int = MAX_DEPTH,
    max_values: int = MAX_VALUES,
) -> tuple[Any, Node | None]:
    """Parses one YAML document safely (``yaml.safe_load``'s types), within limits.

    The text is parsed once (by libyaml when PyYAML has it): the limits are checked on the event stream while
    the node tree is built from it, before anything is constructed, and the data is then constructed from that
    tree. Only a small text that does not parse is parsed again, by the pure-Python parser, whose messages say
    what it found. The data is a plain tree: an alias becomes a copy, so changing one place never changes another.

    Args:
        text: The YAML text.
        path: Where it came from, for messages (a file, or ``--set KEY``).
        max_aliases: The most alias uses (``*name``).
        max_depth: The most nested sequences and mappings, aliases expanded.
        max_values: The most scalars and collections, each alias use counted as a copy of what it names.

    Returns:
        The data (None for an empty document) and the root node, whose marks give each value's line.

    Raises:
        ScenarioError: One line, ``<path>:<line>: ...`` with the fix. When the text is not valid YAML the
            error is chained from the ``yaml.YAMLError``; a limit error is not chained.
    """
    name = _shown(path)
    composer = _Composer(name, max_aliases, max_depth, max_values)
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            composer.feed(event)
    except yaml.YAMLError as err:
        raise ScenarioError(_syntax_problem(err, text, replace(composer))) from err
    root = composer.root
    if root is None:
        return None, None
    tree = copy.deepcopy(root) if composer.merges else root  # PyYAML flattens merge keys (<<) in place
    try:
        data = _Constructor().construct_document(tree)
    except yaml.YAMLError as err:
        raise ScenarioError(_syntax_problem(err, text, replace(composer))) from err
    except (ValueError, TypeError, AttributeError, OverflowError) as err:  # not from one node's constructor
        msg = f"{name}: not valid YAML ({err}); check the values"
        raise ScenarioError(msg) from err
    return (_unshared(data) if composer.aliases else data), root


@dataclass
class _Open:
    """A sequence or mapping being composed."""

    node: SequenceNode | MappingNode
    anchor: str | None
    values: int = 1  # itself and everything in it, aliases expanded
    height: int = 1  # the deepest nesting inside it, itself included
    key: Node | None = None  # a mapping's key waiting for its value


@dataclass
class _Composer:
    """Builds the node tree from parser events (like ``yaml.composer.Composer``), checking the limits first."""

    name: str
    max_aliases: int
    max_depth: int
    max_values: int
    root: Node | None = field(default=None, init=False)
    aliases: int = field(default=0, init=False)
    merges: bool = field(default=False, init=False)
    _values: int = field(default=0, init=False)
    _documents: int = field(default=0, init=False)
    _stack: list[_Open] = field(default_factory=list, init=False)
    _anchors: dict[str, tuple[Node, int, int]] = field(default_factory=dict, init=False)  # node, values, height
    _resolver: Resolver = field(default_factory=Resolver, init=False)

    def feed(self, event: yaml.Event) -> None:
        """Takes the next event; raises `ScenarioError` when a limit is passed."""
        # Most events are scalars: test the exact type, most common first.
        if type(event) is yaml.ScalarEvent:
            self._scalar(event)
        elif type(event) is yaml.MappingStartEvent or type(event) is yaml.SequenceStartEvent:
            self._open(event)
        elif type(event) is yaml.MappingEndEvent or type(event) is yaml.SequenceEndEvent:
            done = self._stack.pop()
            done.node.end_mark = event.end_mark
            if done.anchor is not None:
                self._anchors[done.anchor] = (done.node, done.values, done.height)
            self._attach(done.node, done.values, done.height)
        elif type(event) is yaml.AliasEvent:
            self._alias(event)
        elif type(event) is yaml.DocumentStartEvent:
            self._documents += 1
            if self._documents > 1:
                self._fail(event, "not valid YAML (a second document starts here; a file holds one); remove "
                           "the '---' line or split the file")

    def _alias(self, event: yaml.AliasEvent) -> None:
        self.aliases += 1
        if self.aliases > self.max_aliases:
            self._fail(event, f"more than {self.max_aliases} YAML aliases (*{event.anchor}); write the values "
                       "out instead")
        if any(frame.anchor == event.anchor for frame in self._stack):
            self._fail(event, f"alias *{event.anchor} is inside the value it names (a loop); YAML loops are not "
                       "allowed")
        anchor = event.anchor
        if anchor is None or anchor not in self._anchors:
            self._fail(event, f"not valid YAML (found undefined alias *{anchor}); define &{anchor} before using it")
        node, values, height = self._anchors[anchor]
        self._count(event, values, len(self._stack) + height)
        self._attach(node, values, height)

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(ScalarNode, event.value, event.implicit)
        if tag == _MERGE:
            self.merges = True
        # types-PyYAML lets a node's marks be only yaml.error.Mark; libyaml's events and nodes carry _yaml.Mark.
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)  # type: ignore[arg-type]
        self._count(event, 1, len(self._stack))
        if event.anchor is not None:
            self._anchor(event)
            self._anchors[event.anchor] = (node, 1, 0)
        self._attach(node, 1, 0)

    def _open(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(kind, None, event.implicit)
        self._count(event, 1, len(self._stack) + 1)
        if event.anchor is not None:
            self._anchor(event)
        # types-PyYAML lets a node's marks be only yaml.error.Mark; libyaml's events and nodes carry _yaml.Mark.
        node = kind(tag, [], event.start_mark, event.end_mark, flow_style=event.flow_style)  # type: ignore[arg-type]
        self._stack.append(_Open(node, event.anchor))

    def _anchor(self, event: yaml.NodeEvent) -> None:
        if event.anchor in self._anchors or any(frame.anchor == event.anchor for frame in self._stack):
            self._fail(event, f"not valid YAML (found duplicate anchor &{event.anchor}); give each anchor once")

    def _count(self, event: yaml.Event, values: int, depth: int) -> None:
        self._values += values
        if depth > self.max_depth:
            self._fail(event, f"nested more than {self.max_depth} levels deep; flatten the structure")
        if self._values > self.max_values:
            self._fail(event, f"more than {self.max_values:,} values (each use of an alias counts them again); "
                       "shorten the file")

    def _attach(self, node: Node, values: int, height: int) -> None:
        if not self._stack:
            self.root = node
            return
        parent = self._stack[-1]
        parent.values += values
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.node, SequenceNode):
            parent.node.value.append(node)
        elif parent.key is None:
            parent.key = node
        else:
            parent.node.value.append((parent.key, node))
            parent.key = None

    def _fail(self, event: yaml.Event, problem: str) -> NoReturn:
        mark = event.start_mark  # the parser marks every event
        msg = f"{self.name}:{mark.line + 1}: {problem}" if mark is not None else f"{self.name}: {problem}"
        raise ScenarioError(msg)


class _Constructor(SafeConstructor):
    """``safe_load``'s constructor, whose value errors (``!!int x``, 2026-13-45) point at their node."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:  # noqa: FBT001, FBT002 - PyYAML's API
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as err:
            shown = node.value if isinstance(node, ScalarNode) else node.tag
            problem = f"cannot read {_cut(shown)!r} as {node.tag.rpartition(':')[2]} ({err})"
            raise ConstructorError(None, None, problem, node.start_mark) from err


def _syntax_problem(err: yaml.YAMLError, text: str, composer: _Composer) -> str:
    """The message for a text the parser or the constructor refused; ``composer`` is a fresh one."""
    name = composer.name
    if isinstance(err, yaml.reader.ReaderError):
        bad = _NOT_YAML.search(text)
        line = text.count("\n", 0, bad.start()) + 1 if bad else 1
        char = f"character {bad.group()!r}" if bad else "a character"
        return f"{name}:{line}: not valid YAML ({char} is not allowed); remove it or write it as an escape"
    mark = getattr(err, "problem_mark", None)
    where = f"{name}:{mark.line + 1}" if mark else name
    if isinstance(err, ConstructorError):
        return f"{where}: not valid YAML ({err.problem}); quote the value to keep it as text"
    if "maximum nesting depth" in str(getattr(err, "problem", "")):  # libyaml's own limit (1,000 levels)
        msg = f"{where}: nested more than {composer.max_depth} levels deep; flatten the structure"
        raise ScenarioError(msg) from None  # a limit, not a syntax error: not chained (see load_yaml)
    if _LOADER is not yaml.SafeLoader and len(text) <= _PYTHON_MESSAGE_BYTES:
        # The pure-Python parser's messages say what it found ("but got '<stream end>'"), libyaml's only what
        # it missed; on a small text the second parse costs milliseconds.
        err = _python_parser_error(text, composer) or err
        mark = getattr(err, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}: not valid YAML ({problem}); check indentation and quoting"


def _python_parser_error(text: str, composer: _Composer) -> yaml.YAMLError | None:
    """The pure-Python parser's error, within the same limits (its scanner is slow on deep nesting)."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            composer.feed(event)
    except yaml.YAMLError as err:
        return err
    return None


def _unshared(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _unshared(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_unshared(value) for value in data]
    return data


def load_json(
    text: str, path: str | Path, *, line: int = 1, max_depth: int = MAX_DEPTH, problem: str = "not valid JSON",
    fix: str = "check the file",
) -> Any:
    """Parses JSON, refusing malformed text and nesting deeper than ``max_depth``.

    Args:
        text: The JSON text (a whole file, or one line of a JSON Lines file).
        path: The file, for messages.
        line: The line of ``path`` where ``text`` starts (a JSON Lines record's line).
        max_depth: The most nested arrays and objects.
        problem: What a failure means, for messages: "not valid JSON", "truncated or corrupt event".
        fix: What to do about it, for messages.

    Returns:
        The data.

    Raises:
        ScenarioError: ``<path>:<line>: <problem> (<why>); <fix>``.
    """
    name = _shown(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{name}:{line + err.lineno - 1}: {problem} ({err.msg}); {fix}"
        raise ScenarioError(msg) from err
    except (ValueError, RecursionError) as err:  # a number of over 4,300 digits; nesting past the stack
        why = f"nested more than {max_depth} levels deep" if isinstance(err, RecursionError) else str(err)
        msg = f"{name}:{line}: {problem} ({why}); {fix}"
        raise ScenarioError(msg) from None
    if _depth_over(data, max_depth):
        msg = f"{name}:{line}: {problem} (nested more than {max_depth} levels deep); {fix}"
        raise ScenarioError(msg)
    return data


def _depth_over(data: Any, max_depth: int) -> bool:
    """Whether ``data`` nests arrays and objects more than ``max_depth`` deep (without recursing)."""
    todo = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return True
            todo.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def _shown(path: str | Path) -> str:
    """The path as a message shows it: as it is, or quoted when it holds a newline or another control character."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _cut(text: str, most: int = 80) -> str:
    return text if len(text) <= most else text[:most] + "..."
