"""``python run.py train HARVEST_DIR [...] --method sft|dpo|stable-alignment --out MODEL_DIR``.

Everything is checked before ``MODEL_DIR`` is made: the harvests, the settings, the base model. Training writes
checkpoints into ``MODEL_DIR/checkpoints``; the same command after Ctrl-C or kill -9 resumes from the last one
(``MODEL_DIR/train.json`` holds the command; another command on the folder is refused). At the end:
``MODEL_DIR/hf`` (the merged model and its tokenizer), ``MODEL_DIR/model-<quantize>.gguf``, ``metrics.json``
(held-out metrics before and after) and the model card ``README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from simulacra.errors import ScenarioError
from simulacra.scenarios.messages import cause
from simulacra.training.config import TrainConfig
from simulacra.training.data import TrainingData, load_harvests

__all__ = ["TrainRequest", "cache_dir", "train"]


@dataclass
class TrainRequest:
    """One ``train`` command."""

    harvests: list[Path]
    method: str
    out: Path
    base: str | None
    lora: bool
    epochs: float
    seed: int
    config: TrainConfig

    def record(self) -> dict[str, Any]:
        """What must match for a folder's training to be resumed."""
        return {"harvests": [str(p.resolve()) for p in self.harvests], "method": self.method, "base": self.base,
                "lora": self.lora, "epochs": self.epochs, "seed": self.seed, "config": self.config.model_dump()}


def cache_dir() -> Path:
    """Where converted base models are kept: ``$SIMULACRA_CACHE``, else ``$XDG_CACHE_HOME/simulacra``."""
    root = os.environ.get("SIMULACRA_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "simulacra"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(request: TrainRequest, console: Console) -> dict[str, Any]:
    """Trains, exports and writes the card; returns ``metrics.json``'s content.

    Raises:
        ScenarioError: Bad input (nothing written), or a folder that holds another training.
    """
    data = load_harvests(request.harvests, request.method)
    cfg = request.config
    train_rows, held_rows = data.split(cfg.heldout, request.seed)
    _check_out(request)
    from simulacra.training.export import base_folder, converter

    converter()  # before hours of training, not after
    base, base_text = base_folder(request.base, cache_dir())
    model, tokenizer = _load(base)
    request.out.mkdir(parents=True, exist_ok=True)
    (request.out / "train.json").write_text(json.dumps(request.record(), indent=1), encoding="utf-8")

    from simulacra.training.metrics import heldout_metrics

    pairs, sft = _heldout(data, held_rows)
    console.print(f"{len(train_rows)} training rows, {len(held_rows)} held out ({len(pairs)} pairs); base {base_text}")
    before = heldout_metrics(model, tokenizer, pairs, sft, beta=cfg.beta, max_length=cfg.max_length)
    reference = before.pop("reference_logps")
    started = time.monotonic()
    tuned = _fit(request, model, tokenizer, train_rows, console)
    after = heldout_metrics(tuned, tokenizer, pairs, sft, beta=cfg.beta, max_length=cfg.max_length,
                            reference=reference)
    after.pop("reference_logps")
    hf = request.out / "hf"
    shutil.rmtree(hf, ignore_errors=True)
    tuned.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    from simulacra.training.export import to_gguf

    gguf = to_gguf(hf, request.out / f"model-{cfg.quantize}.gguf", cfg.quantize)
    metrics = {"method": request.method, "train_rows": len(train_rows), "heldout_rows": len(held_rows),
               "before": before, "after": after, "train_seconds": round(time.monotonic() - started, 1),
               "gguf": gguf.name, "hf": "hf"}
    (request.out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    (request.out / "README.md").write_text(_card(request, data, base_text, metrics), encoding="utf-8")
    return metrics


def _check_out(request: TrainRequest) -> None:
    out = request.out
    if out.exists() and not out.is_dir():
        msg = f"{out}: exists and is not a folder; give --out a new folder"
        raise ScenarioError(msg)
    if out.is_dir() and any(out.iterdir()):
        try:
            kept = json.loads((out / "train.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            kept = None
        if kept != request.record():
            msg = (f"{out}: holds something else than this training (its train.json differs or is missing); give "
                   "--out a new folder, or the same command to resume it")
            raise ScenarioError(msg)


def _load(base: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
    except Exception as err:  # noqa: BLE001 - transformers' many ways to refuse a folder
        msg = f"{base}: the base model does not load ({cause(err)}); give --base a model folder or a GGUF"
        raise ScenarioError(msg) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _heldout(data: TrainingData, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if data.method == "sft":
        return [], rows
    return rows, []


def _fit(request: TrainRequest, model: Any, tokenizer: Any, rows: list[dict[str, Any]], console: Console) -> Any:
    """Trains ``model`` on ``rows`` (resuming from the newest checkpoint); returns the tuned model, LoRA merged."""
    import torch
    from datasets import Dataset

    cfg = request.config
    lr = cfg.learning_rate or (1e-4 if request.lora else 5e-6)
    common: dict[str, Any] = {
              "output_dir": str(request.out / "checkpoints"), "per_device_train_batch_size": cfg.batch_size,
              "num_train_epochs": request.epochs, "max_steps": cfg.max_steps, "learning_rate": lr,
              "seed": request.seed, "data_seed": request.seed, "logging_steps": 1, "save_steps": cfg.save_steps,
              "save_total_limit": 2, "report_to": "none", "bf16": False, "fp16": False,
              "gradient_checkpointing": False, "disable_tqdm": True, "use_cpu": not torch.cuda.is_available(),
              "dataloader_num_workers": 0, "remove_unused_columns": False}
    peft = None
    if request.lora:
        from peft import LoraConfig

        peft = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    progress = _progress(console)
    if request.method == "dpo":
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        loss = ["sigmoid", "sft"] if cfg.sft_weight > 0 else ["sigmoid"]
        weights = [1.0, cfg.sft_weight] if cfg.sft_weight > 0 else None
        # keep_end: a pair too long loses the prompt's start (as the held-out metrics do), never the answer's end
        args: Any = DPOConfig(**common, beta=cfg.beta, max_length=cfg.max_length, truncation_mode="keep_end",
                         loss_type=loss, loss_weights=weights)
        dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                                      "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                      "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
        trainer: Any = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                  peft_config=peft, callbacks=[progress])
    elif request.method == "sft":
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

        args = SFTConfig(**common, max_length=cfg.max_length, truncation_mode="keep_end")
        dataset = Dataset.from_list([{"messages": r["messages"]} for r in rows])
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft, callbacks=[progress])
    else:
        from transformers import TrainingArguments

        from simulacra.training.stable_alignment import StableAlignmentCollator, StableAlignmentTrainer

        if peft is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft)
        dataset = Dataset.from_list([{"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"]],
                                      "scores": [float(r["score_chosen"]), float(r["score_rejected"])]}
                                     for r in rows])
        trainer = StableAlignmentTrainer(model=model, args=TrainingArguments(**common), train_dataset=dataset,
                                         data_collator=StableAlignmentCollator(tokenizer, cfg.max_length),
                                         callbacks=[progress])
        trainer.margin, trainer.ratio, trainer.rating_scale = cfg.margin, cfg.ratio, cfg.rating_scale
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the Rich bar shows the loss; no dict printed a step
    trainer.train(resume_from_checkpoint=_last_checkpoint(request.out / "checkpoints"))
    tuned = trainer.model
    if hasattr(tuned, "merge_and_unload"):
        tuned = tuned.merge_and_unload()
    return tuned


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint.

    transformers writes trainer_state.json last, so a checkpoint a kill interrupted has none, or an empty or torn
    one, and is skipped (its steps are trained again, to the same weights).
    """
    found = []
    for path in folder.glob("checkpoint-*"):
        try:
            state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if path.name[11:].isdigit() and isinstance(state, dict) and isinstance(state.get("global_step"), int):
            found.append(path)
    return str(max(found, key=lambda p: int(p.name[11:]))) if found else None


def _progress(console: Console) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        """A Rich bar over the optimizer steps with the last loss."""

        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), console=console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=state.max_steps, completed=state.global_step, loss="")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.update(self.task, completed=state.global_step, loss=f"loss {logs['loss']:.4f}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.stop()

    return RichProgress()


def _card(request: TrainRequest, data: TrainingData, base: str, metrics: dict[str, Any]) -> str:
    cfg = request.config
    rows = [f"| {name} | {metrics['before'][name]} | {metrics['after'][name]} |"
            for name in ("preference_accuracy", "reward_margin", "sft_loss")]
    files = [f"| {f['path']} | {f['records']} | {f['sha256']} |" for f in data.files]
    runs = [f"| {r['run']} | {r['scenario']} | {r['seed']} | {r['model']} |" for r in data.runs]
    return "\n".join([
        "---", "library_name: transformers", "tags: [simulacra, " + request.method + "]", "---", "",
        f"# {request.out.name}: {request.method} on a Simulacra harvest", "",
        f"Base: {base}. Method: `{request.method}`{' with LoRA (merged)' if request.lora else ''}, seed "
        f"{request.seed}, {request.epochs} epoch(s), {metrics['train_rows']} training rows, {metrics['heldout_rows']} "
        f"held out by question ({cfg.heldout} of the questions).", "",
        f"Files: `hf/` (transformers, vLLM) and `{metrics['gguf']}` (`--set llm.model={request.out / metrics['gguf']}` "
        "runs it on the embedded llama.cpp engine).", "",
        "## Held-out metrics", "", "| metric | base | tuned |", "|---|---|---|", *rows, "",
        "Preference accuracy: the share of held-out pairs whose chosen answer gets the higher implicit reward "
        "(beta x log-ratio to the base), ties half; reward margin: its mean gap; SFT loss: mean NLL per token of "
        "the chosen (or assistant) answers.", "",
        "## Hyperparameters", "", "```json", json.dumps({**cfg.model_dump(), "lora": request.lora}, indent=1),
        "```", "",
        "## Training data", "", "| file | records | sha256 |", "|---|---|---|", *files, "",
        "| run | scenario | seed | model |", "|---|---|---|---|", *runs, ""])
