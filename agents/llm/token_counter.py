"""Token counts without an engine: the model's own tokenizer where one is at hand, else an estimate.

`token_counter` picks the most faithful counter for a scenario's ``llm.model``; the dry backend
(`agents.llm.dry.DryBackend`) reports its counts as an engine would.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.agents.llm.base import Message
from simulacra.errors import BackendError

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

__all__ = ["CHARS_PER_TOKEN", "MESSAGE_TOKENS", "GGUFTokenCounter", "HFTokenCounter", "TokenCounter",
           "token_counter"]

CHARS_PER_TOKEN = 4
# Role markers around a message when there is no chat template to render (ChatML's "<|im_start|>user\n" and
# "<|im_end|>\n" are 5 tokens; other templates use 3 to 5).
MESSAGE_TOKENS = 4
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class TokenCounter:
    """Estimates: one token per `CHARS_PER_TOKEN` characters (rounded up), plus `MESSAGE_TOKENS` per message.

    | method   | override? | what it does                                   |
    |----------|-----------|------------------------------------------------|
    | `count`  | optional  | tokens of a text (an answer)                   |
    | `prompt` | optional  | tokens of a chat as the engine's prompt        |

    Attributes:
        method: How tokens are counted, for people (``summary.json``'s ``llm.token_counter``).
        name: A short name of the tokenizer, part of the dry backend's model id.
    """

    method = f"estimate: {CHARS_PER_TOKEN} characters per token, {MESSAGE_TOKENS} more per message"
    name = "estimate"

    def count(self, text: str) -> int:
        """Returns the tokens of ``text``."""
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def prompt(self, messages: Sequence[Message]) -> int:
        """Returns the tokens of the prompt ``messages`` become: each content plus `MESSAGE_TOKENS`."""
        return sum(self.count(m.content) + MESSAGE_TOKENS for m in messages)


def _chat_message(message: Message) -> ChatCompletionRequestMessage:
    """``message`` as llama.cpp's chat formatter takes it (`Message.to_dict`, typed by role)."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    return {"role": "assistant", "content": message.content}


class GGUFTokenCounter(TokenCounter):
    """The vocabulary of a GGUF file (no weights), its chat template rendered as llama.cpp renders it.

    With the template, the prompt count equals llama.cpp's ``usage.prompt_tokens``; a file without one is
    counted as content tokens plus `MESSAGE_TOKENS` per message.
    """

    def __init__(self, path: Path) -> None:
        """Loads the vocabulary of ``path``.

        Raises:
            BackendError: The file does not load.
        """
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            # A vocabulary alone has no training context, and llama.cpp says so on stderr: not worth a line.
            with contextlib.redirect_stderr(io.StringIO()):
                self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as err:
            msg = f"llama.cpp could not read the vocabulary of {str(path)!r}: {err}"
            raise BackendError(msg) from err
        template = self._llm.metadata.get("tokenizer.chat_template")
        self._format = None
        if template:
            self._format = Jinja2ChatFormatter(template=template, eos_token=self._token(self._llm.token_eos()),
                                               bos_token=self._token(self._llm.token_bos()))
        self.name = path.name
        self.method = f"tokenizer of {path.name}" + ("" if template else f", {MESSAGE_TOKENS} tokens per message")

    def _token(self, token: int) -> str:
        return self._llm._model.token_get_text(token) if token != -1 else ""  # noqa: SLF001 - as Llama does

    def count(self, text: str) -> int:
        """Returns the tokens of ``text`` (no start token)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def prompt(self, messages: Sequence[Message]) -> int:
        """Returns the tokens of the chat as the template renders it, the assistant's turn opened."""
        if self._format is None:
            return super().prompt(messages)
        rendered = self._format(messages=[_chat_message(m) for m in messages])
        tokens = self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        return len(tokens)


class HFTokenCounter(TokenCounter):
    """The tokenizer of a Hugging Face model folder (what vLLM serves), read from the folder only."""

    def __init__(self, folder: Path) -> None:
        """Loads the tokenizer in ``folder`` (never from the hub).

        Raises:
            BackendError: ``transformers`` is missing or the tokenizer does not load.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoTokenizer

            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (ImportError, OSError, ValueError) as err:
            msg = f"no tokenizer could be read from {str(folder)!r}: {err}"
            raise BackendError(msg) from err
        template = getattr(self._tokenizer, "chat_template", None)
        self.name = folder.name
        self.method = f"tokenizer of {folder.name}" + ("" if template else f", {MESSAGE_TOKENS} tokens per message")

    def count(self, text: str) -> int:
        """Returns the tokens of ``text`` (no special tokens)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def prompt(self, messages: Sequence[Message]) -> int:
        """Returns the tokens of the chat as its template renders it (the assistant's turn opened)."""
        if not getattr(self._tokenizer, "chat_template", None):
            return super().prompt(messages)
        text = self._tokenizer.apply_chat_template([m.to_dict() for m in messages], tokenize=False,
                                                   add_generation_prompt=True)
        return len(self._tokenizer.encode(text, add_special_tokens=False))


def token_counter(model: str | None) -> TokenCounter:
    """The most faithful counter for ``model`` (a scenario's ``llm.model``).

    Args:
        model: A GGUF file, a model folder with a tokenizer, anything else (a served model's name), or None
            for the shipped SmolLM2 GGUF.

    Returns:
        A `GGUFTokenCounter`, an `HFTokenCounter`, or the estimate (`TokenCounter`) when neither tokenizer is
        at hand or it does not load; the estimate's ``method`` then says why.
    """
    from simulacra.agents.llm.llamacpp import shipped_model_path

    try:
        path = Path(model) if model else shipped_model_path()
        if path.is_file() and path.suffix.lower() == ".gguf":
            return GGUFTokenCounter(path)
        if path.is_dir() and any((path / f).is_file() for f in TOKENIZER_FILES):
            return HFTokenCounter(path)
    except BackendError as err:
        estimate = TokenCounter()
        estimate.method += f" ({err})"
        return estimate
    return TokenCounter()
