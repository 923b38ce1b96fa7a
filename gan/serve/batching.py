"""Forward passes shared across threads: many visitors' requests, one generator call.

A 2-core server is fastest running one forward pass at a time on both cores; visitors that arrive while a pass runs
wait for the next one, which then takes all of their images together (up to `max_images`). Throughput grows with
load instead of latency: at 32 waiting requests of 16 images, one pass of 256 images costs far less than 32 passes
of 16 (per-call overheads dominate small batches on CPU). A request is never split across passes unless it is
larger than `max_images`, and each caller gets exactly its own rows back, in order.

Long jobs on the same cores (an inversion's hundreds of gradient steps) would otherwise share them with every pass
and double a visitor's wait: they call `BatchedGenerator.turns.wait()` between their steps, which lets any pass that
waits or runs go first (`Turns`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import torch
from torch import nn

from ..models import class_weights


class Turns:
    """Interactive work first: while any interactive call is in flight, long jobs pause between their steps.
    A job waits at most `max_wait` seconds per step, so under endless interactive load it is slowed, never starved."""

    def __init__(self, max_wait: float = 0.5):
        self.max_wait = max_wait
        self._in_flight = 0
        self._idle = threading.Condition()

    @contextmanager
    def interactive(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.notify_all()

    def wait(self) -> None:
        """Called by a long job between its steps: returns once no interactive call is in flight (or after max_wait)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=self.max_wait)


class BatchedGenerator(nn.Module):
    """Wraps a generator so that concurrent calls from many threads share forward passes; called like the generator
    (z (B, latent_dim), classes (B,) or class weights (B, K)) and returns its output for exactly those rows."""

    def __init__(self, generator: nn.Module, *, max_images: int = 256):
        super().__init__()
        self.inner = generator
        self.model_config = generator.model_config
        self.max_images = max_images
        self._requests: queue.SimpleQueue[tuple[torch.Tensor, torch.Tensor, Future]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.turns = Turns()  # requests here are the interactive work; long jobs wait for them between steps

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Class indices become class weights here, so requests with indices and with mixtures can share a pass.
        weights = class_weights(labels, self.model_config.num_classes, z.dtype)
        if len(z) > self.max_images:  # a pass never grows beyond max_images, so other visitors wait at most one
            return torch.cat([self(z[i:i + self.max_images], weights[i:i + self.max_images])
                              for i in range(0, len(z), self.max_images)])
        done: Future = Future()
        self._ensure_worker()
        with self.turns.interactive():
            self._requests.put((z.detach().cpu(), weights.detach().cpu(), done))
            return done.result()

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve_forever, daemon=True, name="generator-batches")
                self._worker.start()

    def _serve_forever(self) -> None:
        waiting = None  # a request taken from the queue that did not fit into the last pass: first in the next
        while True:
            batch = [waiting or self._requests.get()]  # sleeps until a request comes
            waiting, size = None, len(batch[0][0])
            while size < self.max_images:  # then takes whatever else waits, as long as it fits
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                if size + len(request[0]) > self.max_images:
                    waiting = request
                    break
                batch.append(request)
                size += len(request[0])
            self._run(batch)

    def _run(self, batch: list[tuple[torch.Tensor, torch.Tensor, Future]]) -> None:
        try:
            with torch.inference_mode():
                out = self.inner(torch.cat([z for z, _, _ in batch]), torch.cat([w for _, w, _ in batch]))
        except BaseException as error:  # noqa: BLE001 - every waiting caller gets the error, the worker lives on
            for _, _, done in batch:
                done.set_exception(error)
            return
        for part, (_, _, done) in zip(out.split([len(z) for z, _, _ in batch]), batch):
            done.set_result(part)
