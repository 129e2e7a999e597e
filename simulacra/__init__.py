"""Simulacra: societies of LLM-driven agents on Mesa.

The distribution installs one root package. Its parts live in the repository's top-level folders:
``simulacra.agents`` (agents/), ``simulacra.worlds`` (worlds/), ``simulacra.memory`` (memory/) and
``simulacra.scenarios`` (scenarios/); ``simulacra.cli`` is the command line (``simulacra`` or ``python run.py``).
"""
