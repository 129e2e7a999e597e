"""The Chroma server mode: a real `chroma run` on 127.0.0.1, used through ChromaStore.open(url=...)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simulacra.errors import BackendError
from simulacra.memory.chroma_store import ChromaStore
from tests.fakes import bag_of_words, engine_sets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = free_port()
    exe = Path(sys.executable).parent / "chroma"
    log = tmp_path_factory.mktemp("chroma") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(exe), "run", "--path", str(log.parent / "db"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"chroma server did not start: {log.read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_store_round_trip_through_a_server(chroma_url) -> None:
    store = ChromaStore.open(url=chroma_url, embed=bag_of_words, prefix="srv")
    vectors = bag_of_words(["one fish", "two fish"])
    store.add("Ann", ["Ann:0", "Ann:1"], ["one fish", "two fish"], vectors,
              [{"seq": 0, "kind": "observation"}, {"seq": 1, "kind": "plan"}])
    store.update_metadata("Ann", ["Ann:1"], [{"seq": 1, "kind": "reflection"}])
    loaded = store.load("Ann")
    assert loaded.ids == ["Ann:0", "Ann:1"]
    assert loaded.texts == ["one fish", "two fish"]
    assert np.allclose(loaded.embeddings, vectors, atol=1e-6)
    assert loaded.metadatas[1]["kind"] == "reflection"
    assert store.load("Bob").ids == []


def test_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(BackendError, match=r"cannot reach the Chroma server at 'http://127.0.0.1:9' .*chroma run"):
        ChromaStore.open(url="http://127.0.0.1:9", embed=bag_of_words)


GENERATIVE = """\
name: gsw
seed: 5
steps: 2
world: {{type: town}}
agents:
  - {{name: Ann, persona: a baker, home: cafe}}
  - {{name: Bob, persona: a poet, home: park}}
cognition: {{kind: generative}}
memory: {{chroma_url: "{url}"}}
llm: {{retries: 0, backoff_s: 0}}
outputs: {{live: false, plots: false}}
"""


def empty_object(request) -> str:
    """Every answer ``{}``: each call falls back (the runs' memories are what the test is about)."""
    return "{}"


def test_a_sweeps_runs_share_one_chroma_server_without_meeting(chroma_url, tmp_path, monkeypatch) -> None:
    import json
    import urllib.request

    from simulacra.sweeps.plan import SweepPlan
    from simulacra.sweeps.task import execute, run_id

    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "g.yaml"
    scenario.write_text(GENERATIVE.format(url=chroma_url), encoding="utf-8")
    out = tmp_path / "sweep"
    plan = SweepPlan.from_args(scenario, sets=engine_sets("tests.test_chroma_server:empty_object"), replicas=2,
                               out=out)
    out.mkdir()
    results = [execute(spec.to_dict(), plan.to_dict(), str(out)) for spec in plan.runs()]
    assert [r["status"] for r in results] == ["completed", "completed"]
    listing = f"{chroma_url}/api/v2/tenants/default_tenant/databases/default_database/collections"
    with urllib.request.urlopen(listing, timeout=10) as response:  # the server's own list, not a client's view
        names = [c["name"] for c in json.loads(response.read())]
    for spec, result in zip(plan.runs(), results, strict=True):
        mine = [n for n in names if n.startswith(f"gsw-{run_id(plan, spec)}-")]
        assert len(mine) == 2  # one collection per agent, named after the sweep and the run
        assert result["summary"]["memory"]["memories"] > 0
    assert not (out / "runs" / "c0-base-r0" / "chroma").exists()  # nothing embedded in the run folders
