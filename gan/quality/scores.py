"""A generator's scores as one typed record: what `score_generator` and the C2ST, CAS and memorization measures find,
and what metrics.json, a run's evals.jsonl, the model card, the app, the training monitor and the benchmarks read.

The JSON files keep their keys, so `Scores.from_dict` reads the files of every version (a figure a file lacks is
None; keys this version does not know are kept in `extra` and written back) and `to_dict` writes them, figures that
were not measured left out. A new metric is a field here, the function that measures it (gan/quality/metrics.py),
and, where people should see it, a row in gan/sharing/card.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scores:
    # Where the figures come from (`with_provenance`); `step` and `train_minutes` for evaluations during training.
    step: int | None = None
    model: str | None = None
    dataset: str | None = None
    reference_split: str | None = None  # the real images FD, KID and class accuracy compare with
    train_split: str | None = None  # the real images the FD floor, C2ST and memorization compare with
    seeds: str | None = None
    evaluator: str | None = None
    evaluator_test_accuracy: float | None = None  # the ceiling of class accuracy
    # What was generated: per_class x classes images in the data's class mix, seeds 0.. of each class.
    num_samples: int | None = None
    per_class: int | None = None
    class_counts: list[int] | None = None
    truncation: float | None = None
    reference_images: int | None = None
    # The figures. class_accuracy: {"overall", "per_class": {name: accuracy}}; precision_recall, authenticity and c2st
    # are the dicts that memorization_scores and c2st_of_generator return (their docstrings name the keys).
    class_accuracy: dict[str, Any] | None = None
    fd: float | None = None
    inception_fd: float | None = None
    fd_train_test: float | None = None  # FD's floor: real train vs real reference images
    inception_fd_train_test: float | None = None
    fd_train_test_images: int | None = None
    fd_ratio: float | None = None  # fd / fd_train_test
    kid_mean: float | None = None
    kid_std: float | None = None
    kid_subset_size: int | None = None
    precision_recall: dict[str, Any] | None = None
    authenticity: dict[str, Any] | None = None
    c2st: dict[str, Any] | None = None
    cas: float | None = None
    date: str | None = None
    package_version: str | None = None
    memorization_date: str | None = None
    train_minutes: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as they were

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Scores:
        """The record of a metrics.json or evals.jsonl row (None or {}: a record with nothing measured)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        data = data if isinstance(data, dict) else {}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, in the fields' order, without the figures that were not measured."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**{k: v for k, v in values.items() if v is not None}, **self.extra}

    @property
    def measured(self) -> bool:
        return any(v is not None for v in (self.class_accuracy, self.fd, self.c2st, self.cas))

    @property
    def accuracy(self) -> float | None:
        """Class accuracy of the generated images, by the evaluator."""
        return (self.class_accuracy or {}).get("overall")

    @property
    def c2st_accuracy(self) -> float | None:
        """Held-out accuracy of the real-vs-generated classifier (0.5 = indistinguishable)."""
        return (self.c2st or {}).get("accuracy")

    @property
    def c2st_images(self) -> int | None:
        """Images a side the C2ST compared (a classifier trained on fewer finds less: such scores do not compare)."""
        return (self.c2st or {}).get("images_per_set")
