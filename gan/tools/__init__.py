"""The package's commands that use several layers: `gan-sample`, `gan-evaluate`, `gan-space`, `gan-neighbours`
(and which optional extra a command needs: dependencies.py). `python -m gan.<command>` forwards here.

Layer 7 of gan/, the top (see tests/test_structure.py): may import anything below; nothing in gan/ imports it.
"""
