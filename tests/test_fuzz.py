"""The API fuzzer's quick run: every endpoint it discovers is called, and none answers anonymously or crashes."""

import json
import sys

import pytest

from conftest import REPO, run

pytestmark = pytest.mark.slow  # starts the app and sends it about 60 calls


def test_the_app_refuses_fuzzed_calls_with_sentences(tmp_path):
    out = tmp_path / "fuzz.json"
    result = run([sys.executable, str(REPO / "bench" / "app_fuzz.py"), "--quick", "--out", str(out)], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["endpoints"], "no endpoint discovered"
    assert all(results["per_endpoint"][name]["calls"] >= 1 for name in results["endpoints"]), results["per_endpoint"]
    assert sum(results["totals"].values()) == results["calls"] + results["warmup_calls"]
    assert results["totals"]["anonymous_error"] == 0, json.dumps(results["anonymous_kinds"], indent=1)[:4000]
    assert results["refusal_tracebacks"] == 0  # a refusal is a sentence to the caller, not a traceback in the log
    assert results["server_tracebacks"] == 0, json.dumps(
        [results["distinct_tracebacks"], results["stray_error_lines"]], indent=1)[:4000]
