"""The web view's server: a Starlette app over one run folder, served by uvicorn on loopback in a thread.

Why not Mesa's SolaraViz: it renders a live ``Model`` held in the server process, step by step, and has no notion
of a recorded run; a replay needs a slider over a log that may be 1,000 agents wide, read by step range. A small
JSON API over `RunIndex` and one static page serve both the replay and a live run (the page polls the same API
while the runner appends to the log), with nothing to install beyond Starlette and uvicorn.

The run folder is untrusted input: the API sends its values as JSON data, the page writes them as text, and
`Guard` adds a strict Content-Security-Policy to every answer and refuses requests for other hosts.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from simulacra.runs.run_files import interruptible
from simulacra.web.guard import Guard, check_host, exposure_warning, listen_port
from simulacra.web.memories import StoredMemories
from simulacra.web.run_index import RunIndex, ViewError

__all__ = ["ViewServer", "make_app"]

DEFAULT_PORT = 8765
LIMIT = 200  # events per feed request


def make_app(index: RunIndex, memories: StoredMemories | None = None, *, host: str | None = None,
             port: int = DEFAULT_PORT) -> Guard:
    """The app: the page, its static files and the JSON API over ``index``, behind a `Guard`.

    API (all GET, JSON): ``/api/run`` (meta, town layout), ``/api/frame?step=N``, ``/api/events?first=A&last=B
    [&agent=X][&kind=K][&limit=L]``, ``/api/agent?name=X&step=N``, ``/api/metrics?upto=N``.

    Args:
        index: The run folder's index.
        memories: Its stored memories (generative agents), if any.
        host: The address the server listens on: a request naming another host gets 400 (DNS rebinding). None:
            no ``Host`` check, for an app that no socket serves (a test client's).
        port: The port it listens on.
    """
    static = Path(str(resources.files("simulacra.web") / "static"))
    layout: dict[str, list[float]] = {}  # a live run's places arrive with its first event

    def page(request: Request) -> Response:
        return FileResponse(static / "index.html")

    def run(request: Request) -> Response:
        meta = index.meta()
        if not layout and index.places:
            layout.update(_layout(index.places))
        return JSONResponse({**meta, "layout": layout})

    def frame(request: Request) -> Response:
        return JSONResponse(index.frame_at(_int(request, "step", index.steps_done)))

    def events(request: Request) -> Response:
        step = index.steps_done
        first, last = _int(request, "first", step), _int(request, "last", step)
        found = index.events(first, last, agent=request.query_params.get("agent") or None,
                             kind=request.query_params.get("kind") or None,
                             limit=min(max(_int(request, "limit", LIMIT), 1), 2000))
        return JSONResponse({"first": first, "last": last, "events": found})

    def agent(request: Request) -> Response:
        name, step = request.query_params.get("name", ""), _int(request, "step", index.steps_done)
        stored, problem = None, None
        if memories is not None and memories.present and not index.live:
            try:
                stored = memories.upto(name, index.sim_time(step))
            except Exception as err:  # noqa: BLE001 - a store that cannot be read leaves the events to show
                problem = f"the run's Chroma could not be read ({type(err).__name__}: {err})"
        try:
            return JSONResponse({**index.agent(name, step, stored), "memory_error": problem})
        except KeyError:
            return JSONResponse({"error": f"no agent {name!r} in this run"}, status_code=404)

    def metrics(request: Request) -> Response:
        return JSONResponse(index.metric_series(_int(request, "upto", index.steps_done)))

    routes = [Route("/", page), Route("/api/run", run), Route("/api/frame", frame), Route("/api/events", events),
              Route("/api/agent", agent), Route("/api/metrics", metrics),
              Mount("/static", app=StaticFiles(directory=static), name="static")]
    app = Starlette(routes=routes, exception_handlers={_BadQuery: _bad_query, ViewError: _damaged})
    return Guard(app, host=host, port=port)


class _BadQuery(Exception):
    pass


async def _bad_query(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _damaged(request: Request, exc: Exception) -> Response:
    """A live log that went bad after the view opened it: the message, without where the folder lies."""
    text = str(exc).split("events.jsonl: ", 1)[-1]
    return JSONResponse({"error": f"events.jsonl: {text}"}, status_code=500)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        msg = f"{name}={raw!r} is not a whole number"
        raise _BadQuery(msg) from err


def _layout(places: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Where each town place is drawn, in [0, 1] x [0, 1].

    Kamada-Kawai on the street graph spreads the places by street distance and draws no RNG; a graph that falls
    apart gets a seeded spring layout.
    """
    import networkx as nx

    if not places:
        return {}
    graph: nx.Graph[str] = nx.Graph()
    graph.add_nodes_from(p["name"] for p in places)
    graph.add_edges_from((p["name"], link) for p in places for link in p["links"] if link in graph)
    spots: Mapping[str, Iterable[float]]  # (x, y) pairs, tuples or numpy arrays
    if len(graph) == 1:
        spots = {places[0]["name"]: (0.0, 0.0)}
    elif nx.is_connected(graph):  # spreads the places evenly by street distance, and draws no RNG
        spots = nx.kamada_kawai_layout(graph)
    else:
        spots = nx.spring_layout(graph, seed=7)
    xs, ys = [x for x, _ in spots.values()], [y for _, y in spots.values()]
    width, height = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    return {name: [round((x - min(xs)) / width, 4), round((y - min(ys)) / height, 4)]
            for name, (x, y) in spots.items()}


class ViewServer:
    """Serves the page for one run folder from a background thread.

    Example:
        with ViewServer(Path("runs/town-..."), port=0) as server:
            print(server.url)
    """

    def __init__(self, run_dir: Path, *, host: str = "127.0.0.1", port: int | str = DEFAULT_PORT,
                 live: bool = False) -> None:
        """Indexes the run folder and binds the port (nothing is served until `start`).

        A ``host`` other than loopback prints a warning line on stderr: anyone who can reach it can read the run.

        Args:
            run_dir: The run folder.
            host: The address to listen on (``--host``).
            port: The port (``--port``, a number or its text; 0: any free one).
            live: Whether a run is writing the folder now.

        Raises:
            ViewError: An empty host, a port that is not 0..65535, not a run folder, or the port is taken or not
                allowed (one line each).
        """
        host, port = check_host(host), listen_port(port)
        self.index = RunIndex(run_dir, live=live)
        self.memories = StoredMemories(run_dir)
        self.socket = _bind(host, port)
        self.host, self.port = host, self.socket.getsockname()[1]
        if warning := exposure_warning(host):
            print(warning, file=sys.stderr, flush=True)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the page is."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> ViewServer:
        """Starts serving in a daemon thread; returns self."""
        import uvicorn

        config = uvicorn.Config(make_app(self.index, self.memories, host=self.host, port=self.port),
                                log_level="warning", access_log=False, lifespan="off", server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.socket]},
                                        name="simulacra-web-view", daemon=True)
        self._thread.start()
        return self

    def wait(self, announce: str = "") -> None:
        """Prints ``announce``, then blocks until Ctrl-C (or the server stops), then stops.

        Ctrl-C works even where SIGINT was ignored when Python started (a background job's view), and from the
        moment ``announce`` is printed: a Ctrl-C that follows the line ends the view with exit status 0. SIGTERM (a
        supervisor's stop, ``kill``) ends it the same way, so the memory copy is removed.
        """
        try:
            with interruptible(sigterm=True):
                if announce:
                    print(announce, flush=True)
                while self._thread is not None and self._thread.is_alive():
                    time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stops serving and removes the memory copy."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.socket.close()
        self.memories.close()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not past a listener: only TIME_WAIT leftovers
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as err:
        sock.close()
        hint = (f"choose another port, e.g. --port {port + 1}, or --port 0 for any free one" if port
                else "check --host")
        msg = f"--host {host} --port {port}: cannot listen there ({err.strerror}); {hint}"
        raise ViewError(msg) from err
    sock.setblocking(False)
    return sock
