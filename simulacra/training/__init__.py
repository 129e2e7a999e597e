"""Training on what a society harvested: `run.py train` (sft, dpo, stable-alignment), held-out metrics, exports.

Parts:
    data: harvest folders read, checked and split by question.
    config: the ``--set train.KEY=VALUE`` settings.
    train: the command: base model, TRL's trainers or Stable Alignment's, checkpoints, card.
    stable_alignment: the paper's contrastive objective as a transformers Trainer.
    metrics: held-out preference accuracy, reward margin, SFT loss.
    export: the base model's folder, and the GGUF through llama.cpp's converter.
"""
