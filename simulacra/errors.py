"""The domain failures of Simulacra.

Misuse of an API raises a built-in type (``TypeError``, ``ValueError``); what can go wrong with a
scenario, a backend or a model's output raises one of these, so a command line can turn it into one
clear line and exit status 2.
"""

from __future__ import annotations

__all__ = ["BackendDown", "BackendError", "ParseError", "RunStopped", "ScenarioError", "SimError"]


class SimError(Exception):
    """Base of every domain failure in Simulacra.

    Attributes:
        exit_status: What the command line exits with after printing the message (2: bad input).
    """

    exit_status = 2


class RunStopped(SimError):
    """A run stopped before its end (engine down, disk full: exit 3; Ctrl-C: 130); it can be resumed."""

    def __init__(self, message: str, *, exit_status: int = 3) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class ScenarioError(SimError):
    """A scenario file, or an override of one, is not valid.

    The message is one line: the file and line, the field path, what is wrong and what is allowed.
    """


class BackendError(SimError):
    """An LLM backend could not answer (connection, timeout, engine failure)."""


class BackendDown(BackendError):
    """The engine stayed unreachable for ``llm.down_after_s`` (or died): the run stops and can be resumed.

    The runner turns it into one line with the resume command and exit status 3.
    """


class ParseError(SimError):
    """A model's output did not parse or validate against what was asked.

    Attributes:
        feedback: The text sent back to the model on a retry, telling it what to fix.
    """

    def __init__(self, message: str, *, feedback: str) -> None:
        super().__init__(message)
        self.feedback = feedback
