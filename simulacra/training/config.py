"""`run.py train`'s settings: ``--set train.KEY=VALUE`` through the one override parser, checked by pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulacra.errors import ScenarioError
from simulacra.scenarios.overrides import parse_override

__all__ = ["TrainConfig", "train_config"]


class TrainConfig(BaseModel):
    """Hyperparameters of a training run; every one is in the model card."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float | None = Field(None, gt=0, le=1, description="None: 1e-4 with --lora, 5e-6 without.")
    batch_size: int = Field(8, ge=1, le=1024, description="Examples per optimizer step.")
    max_steps: int = Field(-1, ge=-1, le=10_000_000, description="Stop after this many steps; -1: the epochs decide.")
    max_length: int = Field(128, ge=16, le=32_768, description="Tokens of prompt and answer together (the prompt's "
                                                                "start is cut first).")
    heldout: float = Field(0.2, gt=0, lt=1, description="Share of the questions held out for the metrics.")
    beta: float = Field(0.1, gt=0, le=100, description="DPO's temperature; also scales every method's implicit "
                                                       "reward in the held-out metrics.")
    sft_weight: float = Field(1.0, ge=0, le=100, description="dpo: weight of an SFT term on the chosen answer "
                                                             "(0: pure DPO, whose answers can collapse).")
    margin: float = Field(1.0, ge=0, le=100, description="stable-alignment: the ranking margin per full rating gap.")
    ratio: float = Field(0.5, ge=0, le=100, description="stable-alignment: weight of the ranking term.")
    rating_scale: float = Field(7.0, gt=0, le=1000, description="stable-alignment: the ratings' scale (alignment "
                                                                "world: world.scale, 7).")
    lora_r: int = Field(16, ge=1, le=1024, description="--lora: the adapters' rank.")
    lora_alpha: int = Field(32, ge=1, le=4096, description="--lora: the adapters' scaling.")
    save_steps: int = Field(10, ge=1, le=10_000_000, description="A checkpoint every this many steps (a killed "
                                                                 "training resumes from the last).")
    quantize: Literal["q8_0", "f16", "f32"] = Field("q8_0", description="The GGUF's number format.")


def train_config(sets: list[str]) -> TrainConfig:
    """The settings from ``--set train.KEY=VALUE`` items.

    Raises:
        ScenarioError: A key outside ``train.``, an unknown field or a bad value; one line naming the item.
    """
    data: dict[str, object] = {}
    for item in sets:
        keys, value = parse_override(item)
        if len(keys) != 2 or keys[0] != "train":  # noqa: PLR2004 - train.KEY
            msg = f"--set {item!r}: train takes train.KEY=VALUE (e.g. train.learning_rate=1e-4); fields: {_fields()}"
            raise ScenarioError(msg)
        data[keys[1]] = value
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        given = next((i for i in sets if i.split("=", 1)[0].strip() == f"train.{key}"), f"train.{key}")
        fix = f"fields: {_fields()}" if first["type"] == "extra_forbidden" else first["msg"]
        msg = f"--set {given!r}: {fix}"
        raise ScenarioError(msg) from None


def _fields() -> str:
    return ", ".join(TrainConfig.model_fields)
