"""`python -m gan.neighbours`, kept as documented: the command lives in gan/tools/neighbours.py."""

from .tools.neighbours import main

if __name__ == "__main__":
    raise SystemExit(main())
