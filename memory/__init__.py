"""Agent memory.

Parts:
    RecentMemory: a bounded stream of recent observations, committed at the end of each step.
    MemoryRecord: one remembered thing.
"""

from simulacra.memory.recent import MemoryRecord, RecentMemory

__all__ = ["MemoryRecord", "RecentMemory"]
