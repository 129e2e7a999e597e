"""Replay of a run that grew: resumed with a larger ``--steps``, it is replayed as it was made (dry backend)."""

from __future__ import annotations

import json
from pathlib import Path

import run
from tests.conftest import ROOT

DRY = ["--set", "llm.backend=dry", "--set", "llm.model=estimate"]


def test_a_run_resumed_with_more_steps_replays_byte_for_byte(tmp_path: Path, capsys: object) -> None:
    folder = tmp_path / "run"
    assert run.main([str(ROOT / "scenarios" / "town.yaml"), "--steps", "2", "--plain", "--out", str(folder),
                     *DRY]) == 0
    assert run.main(["resume", str(folder), "--steps", "4", "--plain"]) == 0
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert events[0]["data"]["steps"] == 2  # run_started says how it began
    assert [e["step"] for e in events if e["kind"] == "step_ended"] == [1, 2, 3, 4]
    assert run.main(["replay", str(folder)]) == 0
    assert "replay identical" in capsys.readouterr().out  # type: ignore[attr-defined]
    log = (folder / "events.jsonl").read_bytes()
    (folder / "events.jsonl").write_bytes(log.replace(b'"step": 4', b'"step": 5', 1))
    assert run.main(["replay", str(folder)]) == 1  # a changed log still shows its difference
