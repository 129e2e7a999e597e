"""What a world asks of the minds that live in it, as Protocols (a mind is any class with these members).

| protocol    | who has it                              | the world uses it to                                   |
|-------------|-----------------------------------------|--------------------------------------------------------|
| `Remembers` | generative agents                       | sum memories, retrievals and reflections               |
| `Converses` | generative agents                       | pair up who chose to talk this step, and let them talk |
| `TakesTurns`| Voyager and BabyAGI players             | start a turn, then run its phases before and after act |
| `Learns`    | Voyager players                         | count tasks completed and failed                       |

`agents.respondent.Recalls` (answer a survey or an interview) and `agents.state.Stateful` (snapshots) are the
other two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from simulacra.agents.dialogue import Dialogue
    from simulacra.memory.stream import MemoryStream

__all__ = ["Converses", "Learns", "Remembers", "TakesTurns"]

T = TypeVar("T")


@runtime_checkable
class Remembers(Protocol):
    """A mind with a memory stream (Park et al. 2023)."""

    stream: MemoryStream


@runtime_checkable
class Converses(Remembers, Protocol):
    """A mind that may choose to talk: ``talk_intent`` names whom, this step, or is None.

    The world pairs up who chose to talk; the first of a pair talks with the other through its ``dialogue``
    (`agents.dialogue.Dialogue`), which asks each of them (``ask``) and keeps what is said in both streams.
    """

    talk_intent: str | None
    dialogue: Dialogue

    async def ask(self, purpose: str, template: str, schema: dict[str, Any], parse: Callable[[Any], T], *,
                  fallback: T, max_tokens: int | None = None, **variables: Any) -> T:
        """One schema-constrained LLM call as this mind; a failure falls back to ``fallback``."""
        ...


@runtime_checkable
class TakesTurns(Protocol):
    """A mind whose turn has phases.

    The world calls `begin`, then each phase named in ``PHASES_BEFORE`` (all such minds at once, as
    `World.phase`), every body's ``act``, then each of ``PHASES_AFTER``.
    """

    PHASES_BEFORE: tuple[str, ...]
    PHASES_AFTER: tuple[str, ...]

    def begin(self) -> None:
        """Starts the mind's turn (before any phase)."""
        ...


@runtime_checkable
class Learns(Protocol):
    """A mind that works through tasks and keeps which it completed and which it gave up."""

    name: str
    completed: list[str]
    failed: list[str]
