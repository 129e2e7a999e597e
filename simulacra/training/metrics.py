"""Held-out metrics of a tuned model against its base, the same for every method.

For a held-out preference pair, a model's implicit reward of an answer is ``beta * (log p_model(answer | prompt) -
log p_base(answer | prompt))`` (DPO's, summed over the answer's tokens). Preference accuracy is the share of pairs
whose chosen answer gets the higher reward, a tie counting half: before training the model is its base, every
reward is 0 and the accuracy is 0.5, chance. The reward margin is the mean of (chosen - rejected) rewards. The
held-out SFT loss is the mean negative log-likelihood per token of the chosen answers (SFT rows: the assistant's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["encode_pair", "heldout_metrics", "sequence_logps"]


def encode_pair(tokenizer: Any, prompt: list[dict[str, str]], answer: str, max_length: int) -> tuple[list[int], int]:
    """Token ids of the chat ``prompt`` + the assistant's ``answer``, and how many of them are the prompt's.

    The answer keeps the chat template's own ending; the prompt's start is cut first to fit ``max_length``.
    """
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
    tail = whole[len(head):] if whole.startswith(head) else answer + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(tail, add_special_tokens=False)["input_ids"][: max_length - 1]
    prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(answer_ids) - max_length):]
    return prompt_ids + answer_ids, len(prompt_ids)


def sequence_logps(model: Any, encoded: Sequence[tuple[list[int], int]], batch: int = 8) -> list[tuple[float, int]]:
    """(sum of the answer tokens' log-probabilities, how many answer tokens) for each encoded sequence."""
    import torch

    out: list[tuple[float, int]] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch):
            chunk = encoded[start:start + batch]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (seq, _) in enumerate(chunk):
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
            for row, (seq, prompt_len) in enumerate(chunk):
                answer = logps[row, prompt_len - 1:len(seq) - 1]
                out.append((float(answer.sum()), int(answer.numel())))
    return out


def heldout_metrics(policy: Any, tokenizer: Any, pairs: list[dict[str, Any]], sft: list[dict[str, Any]], *,
                    beta: float, max_length: int, reference: list[tuple[float, int]] | None = None) -> dict[str, Any]:
    """The metrics of ``policy`` on the held-out rows.

    ``reference``: the base model's `sequence_logps` of the pairs (chosen, rejected, chosen, ...); None when
    ``policy`` is the base (then they are computed and returned too).

    Returns:
        ``pairs``, ``preference_accuracy``, ``reward_margin``, ``sft_loss`` (None without rows for it),
        ``sft_tokens`` and ``reference_logps`` (the base's, to pass back for the tuned model).
    """
    encoded = []
    for pair in pairs:
        prompt = [{"role": "user", "content": pair["prompt"]}]
        encoded += [encode_pair(tokenizer, prompt, pair["chosen"], max_length),
                    encode_pair(tokenizer, prompt, pair["rejected"], max_length)]
    own = sequence_logps(policy, encoded)
    base = own if reference is None else reference
    wins, margins = 0.0, []
    for i in range(0, len(own), 2):
        chosen = beta * (own[i][0] - base[i][0])
        rejected = beta * (own[i + 1][0] - base[i + 1][0])
        wins += 1.0 if chosen > rejected else 0.5 if chosen == rejected else 0.0
        margins.append(chosen - rejected)
    sft_encoded = [encode_pair(tokenizer, row["messages"][:-1], row["messages"][-1]["content"], max_length)
                   for row in sft]
    sft_encoded += [encoded[i] for i in range(0, len(encoded), 2)]  # the chosen answers
    sft_logps = sequence_logps(policy, sft_encoded) if sft else [own[i] for i in range(0, len(own), 2)]
    tokens = sum(n for _, n in sft_logps)
    return {"pairs": len(pairs), "preference_accuracy": round(wins / len(pairs), 4) if pairs else None,
            "reward_margin": round(sum(margins) / len(margins), 4) if margins else None,
            "sft_loss": round(-sum(lp for lp, _ in sft_logps) / tokens, 4) if tokens else None,
            "sft_tokens": tokens, "reference_logps": base}
