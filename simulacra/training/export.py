"""The tuned model as files: a Hugging Face folder (transformers, vLLM) and a GGUF that the embedded llama.cpp loads.

The GGUF is written by llama.cpp's own converter, ``convert_hf_to_gguf.py`` with its ``conversion`` and
``gguf-py``, from the llama-cpp-python source distribution that ``make`` builds (``make train-setup`` puts them in
``$VENV/share/simulacra/llama.cpp``; ``SIMULACRA_LLAMA_CONVERT`` names another copy of the script).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from simulacra.errors import ScenarioError
from simulacra.scenarios.messages import cause

__all__ = ["base_folder", "converter", "to_gguf"]

CONVERT_ENV = "SIMULACRA_LLAMA_CONVERT"
_SETUP = "run `make train-setup` (it unpacks llama.cpp's converter from the llama-cpp-python 0.3.36 source)"


def converter() -> Path:
    """Where ``convert_hf_to_gguf.py`` is.

    Raises:
        ScenarioError: It is not there; one line saying how to get it.
    """
    script = Path(os.environ.get(CONVERT_ENV) or Path(sys.prefix) / "share" / "simulacra" / "llama.cpp"
                  / "convert_hf_to_gguf.py")
    if not script.is_file() or not (script.parent / "conversion").is_dir() or not (script.parent / "gguf-py").is_dir():
        msg = f"{script}: llama.cpp's GGUF converter is not there; {_SETUP}, or set {CONVERT_ENV}=PATH"
        raise ScenarioError(msg)
    return script


def to_gguf(hf: Path, out: Path, quantize: str) -> Path:
    """Converts the Hugging Face folder ``hf`` into the GGUF ``out`` (``quantize``: q8_0, f16 or f32).

    llama.cpp then loads it, to prove that it loads.

    Raises:
        ScenarioError: The converter is missing or fails, or llama.cpp cannot load what it wrote.
    """
    script = converter()
    partial = out.with_name(f".{out.name}.partial")
    done = subprocess.run([sys.executable, str(script), str(hf), "--outfile", str(partial), "--outtype", quantize],
                          capture_output=True, text=True, check=False, cwd=script.parent,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})  # the script puts its gguf-py first
    if done.returncode != 0 or not partial.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        partial.unlink(missing_ok=True)
        msg = f"{hf}: llama.cpp's converter failed ({last}); the Hugging Face folder is kept"
        raise ScenarioError(msg)
    partial.replace(out)
    try:
        from llama_cpp import Llama

        Llama(model_path=str(out), n_ctx=64, n_threads=1, verbose=False)
    except Exception as err:  # noqa: BLE001 - whatever llama.cpp raises for a file it cannot load
        msg = f"{out}: llama.cpp cannot load the GGUF it wrote ({cause(err)})"
        raise ScenarioError(msg) from None
    return out


def base_folder(base: str | None, cache: Path) -> tuple[Path, str]:
    """The Hugging Face folder to train from and a description for the model card.

    ``base``: None (the shipped SmolLM2 GGUF), a GGUF file (converted once into ``cache``, keyed by its sha256), or
    a Hugging Face model folder.

    Raises:
        ScenarioError: Not a GGUF or a model folder, or a GGUF transformers cannot read; one line.
    """
    from simulacra.agents.llm.llamacpp import shipped_model_path

    gguf = shipped_model_path() if base is None else Path(base)
    if gguf.is_dir():
        if not (gguf / "config.json").is_file():
            msg = f"{gguf}: not a Hugging Face model folder (no config.json); give --base a model folder or a GGUF"
            raise ScenarioError(msg)
        return gguf, str(gguf)
    if not gguf.is_file() or gguf.suffix.lower() != ".gguf":
        msg = f"{gguf}: --base must be a Hugging Face model folder or a .gguf file"
        raise ScenarioError(msg)
    with gguf.open("rb") as file:  # a base of gigabytes is hashed in chunks, not read whole
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    folder = cache / f"base-{digest[:16]}"
    if not (folder / "config.json").is_file():
        from simulacra.agents.llm.convert_gguf import convert

        partial = cache / f".base-{digest[:16]}.{os.getpid()}"
        try:
            convert(partial, gguf)
        except Exception as err:  # noqa: BLE001 - transformers' many ways to refuse a GGUF
            shutil.rmtree(partial, ignore_errors=True)
            msg = f"{gguf}: transformers cannot read this GGUF ({cause(err)}); give a GGUF of an architecture " \
                  "transformers knows, or a Hugging Face folder"
            raise ScenarioError(msg) from None
        partial.replace(folder)
    return folder, f"{gguf.name} (sha256 {digest})"
