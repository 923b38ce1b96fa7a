"""Exploring a trained model: bring your own image (inversion, morphs, walks: invert.py), GANSpace directions
(directions.py), and "is it copying?" (the training set's neighbour index and its verdicts: neighbours.py).

Layer 5 of gan/ (see tests/test_structure.py): imports the core, gan.quality and gan.sharing, never the training
code or the app's.
"""
