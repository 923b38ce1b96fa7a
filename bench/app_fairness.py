"""Fairness under load: does a visitor who only generates wait longer while others run inversions?

    python bench/app_fairness.py [--model models/fashion-mnist] [--inverters 4] [--calls 40] [--quick]
        [--out bench/results/app_fairness.json]

Starts `python app.py`, then measures `/generate` (16 images, one gradio_client session, calls one after another):
1. alone: latency p50 / p95 over --calls calls;
2. beside --inverters sessions that each loop `/invert` on a drawing for the whole measurement.
Reports both, their ratio (the issue's bar: p50 beside the inversions <= 1.5x alone) and how many inversions finished
meanwhile (they must still be served, not starved). Clients run on the server's machine. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.app_latency import percentile, start_app  # noqa: E402
from bench.report import report  # noqa: E402


def generate_latencies(url: str, model: str, calls: int) -> list[float]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(model, "All classes", 0, 16, 1.0, api_name="/generate")  # the session's first call is not timed
    times = []
    for i in range(calls):
        start = time.perf_counter()
        client.predict(model, "All classes", i + 1, 16, 1.0, api_name="/generate")
        times.append(time.perf_counter() - start)
    return times


def loop_inversions(url: str, model: str, picture: Path, stop: threading.Event, done: list[float]) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    while not stop.is_set():
        start = time.perf_counter()
        client.predict(model, {"background": handle_file(str(picture)), "layers": [], "composite": None}, 1,
                       api_name="/invert")
        done.append(time.perf_counter() - start)


def summary(times: list[float]) -> dict:
    return {"calls": len(times), "p50_ms": round(1000 * percentile(times, 50), 1),
            "p95_ms": round(1000 * percentile(times, 95), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "fashion-mnist"))
    parser.add_argument("--inverters", type=int, default=4)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a few calls: checks that the benchmark runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    calls = 3 if args.quick else args.calls
    process, url, _ = start_app(args.model)
    try:
        with tempfile.TemporaryDirectory() as folder:
            picture = Path(folder) / "drawing.png"
            Image.fromarray(np.pad(np.full((60, 30), 255, np.uint8), 40)).save(picture)
            alone = generate_latencies(url, args.model, calls)
            stop, inversions = threading.Event(), []
            loops = [threading.Thread(target=loop_inversions, args=(url, args.model, picture, stop, inversions))
                     for _ in range(args.inverters)]
            for loop in loops:
                loop.start()
            time.sleep(2.0)  # the inversions are under way before the visitor comes
            started = time.perf_counter()
            beside = generate_latencies(url, args.model, calls)
            measured, finished = time.perf_counter() - started, len(inversions)
            stop.set()
            for loop in loops:
                loop.join(timeout=120)
    finally:
        process.terminate()
        process.wait(timeout=30)
    results = {"model": Path(args.model).name, "generate_images": 16, "alone": summary(alone),
               "beside_inversions": {**summary(beside), "inverters": args.inverters},
               "p50_ratio": round(percentile(beside, 50) / percentile(alone, 50), 2),
               "inversions_finished": finished, "inversions_per_minute": round(60 * finished / measured, 1),
               "inversion_p50_s": round(percentile(inversions, 50), 2) if inversions else None}
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
