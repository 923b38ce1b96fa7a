"""Sharing a model: its card, written from a model folder, and `gan-hub push` (check it loads, write the card,
upload it with the real images only where agreed).

Layer 3 of gan/ (see tests/test_structure.py): imports the core and gan.quality.
"""
