"""Training: the accelerate loop (loop.py) and its parts: a step (steps.py), what a run shares (state.py), the
recipe (losses, DiffAugment, EMA), run folders and resuming (checkpoints.py), exports (export.py), scores during
training (monitor.py). `train.py` at the repository root is its command line.

Layer 4 of gan/ (see tests/test_structure.py): imports the core, gan.quality and gan.sharing.
"""
