"""Data: what a run folder becomes once it is over.

Parts:
    Harvest: runs into datasets (SFT, preference pairs, ratings) that Hugging Face ``datasets`` and TRL load.
"""

from simulacra.data.harvest import Harvest

__all__ = ["Harvest"]
