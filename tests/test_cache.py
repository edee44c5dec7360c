"""The result cache: entries carry a checksum, an edited one is recomputed and rewritten, --no-cache
rewrites entries, a failing write only warns, and evals sharing a cache never read a torn entry."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cache import ResultCache, checksum
from forgetless.cli.main import app
from forgetless.probes.base import Metric, ProbeResult

runner = CliRunner()


def result(acc: float = 0.5) -> ProbeResult:
    metric = Metric(acc, True, stderr=0.1, low=acc - 0.2, high=acc + 0.2)
    return ProbeResult("mc", "choice", "general", "acc", {"acc": metric}, 4, 1.0, {"correct": [1, 0, 1, 0]})


def test_an_entry_round_trips_with_its_checksum(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.put("k", result())
    entry = json.loads((tmp_path / "results" / "k.json").read_text())
    assert entry["checksum"] == checksum(result().to_dict()) and entry["checksum"].startswith("blake2b:")
    assert cache.get("k") == result()


def test_edited_damaged_or_old_entries_are_misses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ResultCache(tmp_path)
    cache.put("k", result())
    path = tmp_path / "results" / "k.json"
    entry = json.loads(path.read_text())
    entry["result"]["metrics"]["acc"]["value"] = 0.99  # still valid JSON, still a valid result
    path.write_text(json.dumps(entry))
    assert cache.get("k") is None
    assert f"cache entry {path} does not match its checksum (edited or damaged): recomputing" in caplog.text
    for text in ('{"checksum": "blake2b:00", "res', json.dumps(result().to_dict()), "[]", ""):
        path.write_text(text)  # truncated; the layout before checksums; not an entry at all
        assert cache.get("k") is None


def test_no_cache_reads_nothing_and_rewrites_entries(tmp_path: Path) -> None:
    ResultCache(tmp_path).put("k", result(0.99))
    fresh = ResultCache(tmp_path, reuse=False)
    assert fresh.get("k") is None
    fresh.put("k", result(0.5))
    assert ResultCache(tmp_path).get("k") == result(0.5)


def test_a_failing_cache_write_warns_once_and_does_not_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "results").write_text("a file where the folder should be")
    cache = ResultCache(tmp_path)
    cache.put("a", result())
    cache.put("b", result())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith("probe results are not being cached: ")
    assert "fix: set FORGETLESS_CACHE to a folder you can write to" in warnings[0].getMessage()


def test_evals_sharing_a_cache_never_read_a_torn_entry(tmp_path: Path) -> None:
    """Writers race on one key while readers read it: every read is one complete result, never a miss."""
    written = {0.25: result(0.25), 0.75: result(0.75)}
    seen: list[ProbeResult | None] = []
    errors: list[BaseException] = []
    ResultCache(tmp_path).put("k", written[0.25])

    def write(acc: float) -> None:
        cache = ResultCache(tmp_path)  # one cache object per eval, as two processes would have
        for _ in range(60):
            cache.put("k", written[acc])

    def read() -> None:
        cache = ResultCache(tmp_path)
        for _ in range(200):
            try:
                seen.append(cache.get("k"))
            except BaseException as error:  # noqa: BLE001 - a reader must never raise
                errors.append(error)

    threads = [threading.Thread(target=write, args=(a,)) for a in written]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(seen) == 400 and all(r in written.values() for r in seen)  # the rename is atomic
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["k.json"]  # no temporaries left


# -- end to end: the CLI on the tiny model ----------------------------------------------------------


def run_eval(model: Path, suite: Path, out: Path, *flags: str) -> dict:
    args = ["eval", "--model", str(model), "--suite", str(suite), "--out", str(out), "--device", "cpu", *flags]
    done = runner.invoke(app, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return {p["name"]: p for p in json.loads((out / "eval.json").read_text())["probes"]}


def entry_of(cache: Path, probe: str) -> Path:
    (path,) = [p for p in (cache / "results").glob("*.json") if json.loads(p.read_text())["result"]["name"] == probe]
    return path


def is_sound(path: Path, metrics: dict) -> bool:
    """The entry holds the measured metrics under a matching checksum (its `seconds` are the rerun's)."""
    entry = json.loads(path.read_text())
    return entry["checksum"] == checksum(entry["result"]) and entry["result"]["metrics"] == metrics


def test_an_edited_entry_is_recomputed_and_rewritten(  # noqa: ANN001
    tiny_model, tiny_suite, tmp_path, isolated_cache, caplog
) -> None:
    first = run_eval(tiny_model, tiny_suite, tmp_path / "a")
    path = entry_of(isolated_cache, "mc")
    original = path.read_text()
    entry = json.loads(original)
    entry["result"]["metrics"]["acc"]["value"] = 0.99  # valid JSON, and outside its own error bars
    path.write_text(json.dumps(entry, indent=2))

    again = run_eval(tiny_model, tiny_suite, tmp_path / "b")
    assert {name: p["cached"] for name, p in again.items()} == {"docs_ppl": True, "mc": False, "canaries": True}
    assert again["mc"]["metrics"] == first["mc"]["metrics"]  # the measurement, not the edit
    assert "does not match its checksum" in caplog.text
    assert is_sound(path, first["mc"]["metrics"])  # rewritten: the next run reuses it
    assert run_eval(tiny_model, tiny_suite, tmp_path / "c")["mc"]["cached"] is True


def test_no_cache_recomputes_and_rewrites_every_entry(tiny_model, tiny_suite, tmp_path, isolated_cache) -> None:  # noqa: ANN001
    first = run_eval(tiny_model, tiny_suite, tmp_path / "a")
    path = entry_of(isolated_cache, "mc")
    original = path.read_text()
    forged = json.loads(original)
    forged["result"]["metrics"]["acc"]["value"] = 0.99
    forged["checksum"] = checksum(forged["result"])  # an edit the checksum cannot catch
    path.write_text(json.dumps(forged))

    fresh = run_eval(tiny_model, tiny_suite, tmp_path / "b", "--no-cache")
    assert not any(p["cached"] for p in fresh.values())
    assert fresh["mc"]["metrics"] == first["mc"]["metrics"]
    assert is_sound(path, first["mc"]["metrics"])  # --no-cache repaired the entry rather than bypassing it
    reused = run_eval(tiny_model, tiny_suite, tmp_path / "c")
    assert all(p["cached"] for p in reused.values())
    assert reused["mc"]["metrics"] == first["mc"]["metrics"]
