"""Synthetic harvests for the training tests: answers whose preferred version carries a learnable mark."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = ["a broken fence", "a lost dog", "a noisy party", "a late bus", "a leaking roof", "a missing parcel",
          "a closed bakery", "a fallen tree", "a parking dispute", "a flooded street", "a stolen bike", "a sick cat",
          "a power cut", "a new neighbour", "a school fair", "a library fine", "a cracked window", "a busy market",
          "a cold winter", "a town meeting", "a garden plot", "a lost key", "a late delivery", "a loud dog"]
ASKS = ["What should I do about {t}?", "How do I talk to my neighbour about {t}?", "Who can help with {t}?"]
MARK = " Thank you."


def synthetic_harvest(folder: Path, pairs: int = 60) -> Path:
    """A harvest folder (card + preferences.jsonl + sft.jsonl) of ``pairs`` preference pairs over distinct prompts:
    the chosen answer is the rejected one with MARK appended, and scored 6 against 3."""
    folder.mkdir(parents=True)
    rows, sft = [], []
    for n in range(pairs):
        topic, ask = TOPICS[n % len(TOPICS)], ASKS[(n // len(TOPICS)) % len(ASKS)]
        prompt = ask.format(t=topic) + ("" if n < len(TOPICS) * len(ASKS) else f" ({n})")
        answer = f"Talk to them calmly about {topic} and agree on a plan."
        rows.append({"prompt": prompt, "chosen": answer + MARK, "rejected": answer, "score_chosen": 6.0,
                     "score_rejected": 3.0, "margin": 3.0, "category": "synthetic", "run": "synthetic-run",
                     "model": "none"})
        sft.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer + MARK}],
                    "source": "sandbox", "score": 6.0, "run": "synthetic-run", "model": "none"})
    (folder / "preferences.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft), encoding="utf-8")
    (folder / "README.md").write_text("---\nconfigs: []\n---\n\n# Simulacra harvest\n\nSynthetic, for tests.\n",
                                      encoding="utf-8")
    return folder
