"""Stable Alignment's contrastive objective as a transformers ``Trainer``.

Liu et al. 2023, "Training Socially Aligned Language Models in Simulated Human Society", section 3.2.

Each example is a question with rated answers. The loss is the SFT loss (mean token negative log-likelihood) of the
best-rated answer, plus ``ratio`` times a ranking term: for each lower-rated answer ``i``,
``L_best - L_i + (score_best - score_i) / rating_scale * margin``, averaged over the answers and floored at 0. So
a lower-rated answer must come out less likely than the best one by a margin that grows with its rating gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import Trainer

from simulacra.training.metrics import encode_pair

__all__ = ["StableAlignmentCollator", "StableAlignmentTrainer", "ranked_loss"]

IGNORE = -100


@dataclass
class StableAlignmentCollator:
    """Pads a batch of {prompt, responses, scores} into (examples x answers) token rows.

    Prompt tokens carry no label: only the answers are scored.
    """

    tokenizer: Any
    max_length: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """``input_ids``, ``attention_mask``, ``labels`` of shape (examples * answers, width), ``scores``."""
        import torch

        rows, scores = [], []
        for example in examples:
            prompt = [{"role": "user", "content": example["prompt"]}]
            rows += [encode_pair(self.tokenizer, prompt, answer, self.max_length) for answer in example["responses"]]
            scores.append([float(s) for s in example["scores"]])
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, (seq, prompt_len) in enumerate(rows):
            ids[n, :len(seq)] = torch.tensor(seq)
            labels[n, prompt_len:len(seq)] = torch.tensor(seq[prompt_len:])
            mask[n, :len(seq)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "scores": torch.tensor(scores)}


def ranked_loss(token_losses: Any, scores: Any, *, margin: float, ratio: float, rating_scale: float) -> Any:
    """The objective for one batch.

    ``token_losses``: (examples, answers), the mean NLL per token of each answer; ``scores``: their ratings.
    """
    import torch

    total = []
    for losses, ratings in zip(token_losses, scores, strict=True):
        order = torch.argsort(ratings, descending=True, stable=True)
        best = order[0]
        others = order[1:]
        if len(others) == 0:
            total.append(losses[best])
            continue
        gaps = (ratings[best] - ratings[others]) / rating_scale * margin
        rank = torch.clamp((losses[best] - losses[others] + gaps).mean(), min=0.0)
        total.append(losses[best] + ratio * rank)
    return torch.stack(total).mean()


class StableAlignmentTrainer(Trainer):
    """A ``Trainer`` whose loss is `ranked_loss`; ``margin``, ``ratio`` and ``rating_scale`` are set on it."""

    margin: float = 1.0
    ratio: float = 0.5
    rating_scale: float = 7.0

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,  # noqa: FBT001, FBT002
                     num_items_in_batch: Any = None) -> Any:
        """Per-answer mean token NLL, then `ranked_loss` over each example's answers."""
        import torch

        scores = inputs.pop("scores")
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                ignore_index=IGNORE, reduction="none").view(target.shape)
        counted = (target != IGNORE).sum(dim=1).clamp(min=1)
        per_answer = (nll.sum(dim=1) / counted).view(scores.shape)
        loss = ranked_loss(per_answer, scores, margin=self.margin, ratio=self.ratio, rating_scale=self.rating_scale)
        return (loss, outputs) if return_outputs else loss
