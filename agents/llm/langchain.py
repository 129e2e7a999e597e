"""Any LangChain chat model (``BaseChatModel``) as a backend."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from simulacra.agents.llm.base import Backend, Completion, LLMRequest
from simulacra.errors import BackendError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from simulacra.scenarios.llm import LLMConfig

__all__ = ["DEFAULT_STRUCTURED_METHOD", "LangChainBackend", "load_chat_model"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]

DEFAULT_STRUCTURED_METHOD: StructuredMethod = "function_calling"


def load_chat_model(class_path: str, kwargs: Mapping[str, Any]) -> BaseChatModel:
    """Imports ``package.module.Class`` and builds the chat model from ``kwargs``.

    A model with a ``max_retries`` field gets 0 unless ``kwargs`` sets it: `LLMClient` does the retrying.

    Raises:
        BackendError: The class cannot be imported or is not a LangChain chat model.
    """
    from langchain_core.language_models import BaseChatModel

    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        msg = f"cannot import LangChain model {class_path!r} ({err}); install its package, e.g. langchain-openai"
        raise BackendError(msg) from err
    if not (isinstance(cls, type) and issubclass(cls, BaseChatModel)):
        msg = f"{class_path!r} is not a langchain_core BaseChatModel subclass"
        raise BackendError(msg)
    if "max_retries" in cls.model_fields:
        kwargs = {"max_retries": 0, **kwargs}  # LLMClient retries with backoff; the model's own would hide faults
    return cls(**kwargs)


class LangChainBackend(Backend):
    """Wraps a LangChain chat model; schemas go through ``with_structured_output``."""

    name = "langchain"

    def __init__(self, model: BaseChatModel, *,
                 structured_method: StructuredMethod = DEFAULT_STRUCTURED_METHOD) -> None:
        """Wraps ``model``.

        Args:
            model: Any LangChain chat model.
            structured_method: How ``with_structured_output`` asks for a schema.
        """
        self._model = model
        self._method: StructuredMethod = structured_method

    @classmethod
    def from_config(cls, config: LLMConfig) -> LangChainBackend:
        """Wraps the chat model ``llm.langchain_class`` built from ``llm.langchain_kwargs`` (`load_chat_model`).

        Raises:
            BackendError: The class cannot be imported or is not a LangChain chat model.
        """
        model = load_chat_model(config.langchain_class or "", config.langchain_kwargs)
        return cls(model, structured_method=config.structured_method)

    @property
    def model_id(self) -> str:
        """The model's class and its own identifying parameters."""
        params = getattr(self._model, "_identifying_params", {})
        return f"langchain:{type(self._model).__name__}:{json.dumps(params, sort_keys=True, default=str)}"

    async def _generate(self, request: LLMRequest) -> Completion:
        messages = [(m.role, m.content) for m in request.messages]
        model = self._with_settings(request)
        try:
            if request.schema is None:
                return _completion(await model.ainvoke(messages), None)
            schema = {"title": "answer", "description": "The answer.", **dict(request.schema)}
            runnable = model.with_structured_output(schema, method=self._method, include_raw=True)
            out = await runnable.ainvoke(messages)
        except Exception as err:  # noqa: BLE001 - any provider error is an engine failure here
            msg = f"LangChain model {type(self._model).__name__} failed: {err}"
            raise BackendError(msg) from err
        if not isinstance(out, dict):  # include_raw=True: always {"raw", "parsed", "parsing_error"}
            msg = f"LangChain model {type(self._model).__name__} answered a {type(out).__name__}, not raw and parsed"
            raise BackendError(msg)
        return _completion(out["raw"], out.get("parsed"))


    def _with_settings(self, request: LLMRequest) -> BaseChatModel:
        """A copy of the model with the request's sampling settings, for the fields the model has.

        Binding them would not reach ``with_structured_output``, which rebuilds the call from the model.
        """
        wanted = {"temperature": request.temperature, "max_tokens": request.max_tokens, "seed": request.seed}
        fields = type(self._model).model_fields
        return self._model.model_copy(update={k: v for k, v in wanted.items() if k in fields})


def _completion(message: Any, parsed: Any) -> Completion:
    usage = getattr(message, "usage_metadata", None) or {}
    if parsed is not None:
        text = json.dumps(parsed, ensure_ascii=False)
    elif getattr(message, "tool_calls", None):
        text = json.dumps(message.tool_calls[0]["args"], ensure_ascii=False)
    else:
        text = message.content if isinstance(message.content, str) else json.dumps(message.content)
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("input_tokens", 0)),
        completion_tokens=int(usage.get("output_tokens", 0)),
    )
