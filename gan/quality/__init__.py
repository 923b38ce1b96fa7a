"""How good a generator is: the evaluator network, the scores (class accuracy, FD / KID, CAS, precision / recall /
authenticity, the two-sample test), exact nearest-neighbour search, and the intervals the scores carry.

Layer 2 of gan/ (see tests/test_structure.py): imports the core modules only (gan/*.py, gan.data, gan.hub).
"""
