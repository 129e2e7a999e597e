"""The web view: a page that replays a run folder, or follows a live run, in the browser.

Parts:
    RunIndex: the run folder's event log indexed by step, the world at each step, an agent's details.
    ViewServer: serves the page and its JSON API on loopback from a background thread.
    Guard: what every answer carries (a strict Content-Security-Policy) and the Host check (DNS rebinding).
    ViewError: a run folder, host or port the view cannot use (one line, exit 2).
"""

from simulacra.web.guard import Guard
from simulacra.web.run_index import RunIndex, ViewError
from simulacra.web.server import ViewServer

__all__ = ["Guard", "RunIndex", "ViewError", "ViewServer"]
