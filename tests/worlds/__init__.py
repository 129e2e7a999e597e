"""Worlds written as a user writes them, for the tests (the world contract's minimal world)."""
