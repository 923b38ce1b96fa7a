"""What the app does, without Gradio: the model registry, input checks, grids and interpolations (demo.py), the
inference-optimised forward passes that concurrent visitors share (batching.py), the copy check, inversion and
direction edits per model (explorer.py), the files the app answers with (scratch.py), how images are shown
(display.py), and the process's housekeeping (housekeeping.py).

Layer 6 of gan/, beside gan.quiz (see tests/test_structure.py): imports every lower layer; app.py wires it to Gradio.
"""
