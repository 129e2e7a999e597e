"""Converts the shipped SmolLM2 GGUF into a bf16 safetensors folder that vLLM's CPU build can load.

    python -m simulacra.agents.llm.convert_gguf OUT_DIR

Needs ``transformers``, ``accelerate`` and ``gguf`` (the vLLM environment has them: ``make vllm-setup``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulacra.agents.llm.llamacpp import shipped_model_path

__all__ = ["convert"]


def convert(out: Path, gguf: Path | None = None) -> Path:
    """Dequantises ``gguf`` (default: the shipped model) to bf16 and saves model and tokenizer in ``out``.

    Returns:
        ``out``, which holds ``config.json``, ``model.safetensors`` and the tokenizer files.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = gguf or shipped_model_path()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m simulacra.agents.llm.convert_gguf OUT_DIR")
    print(f"converted to {convert(Path(sys.argv[1]))}")
