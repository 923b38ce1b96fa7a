"""`python -m gan.evaluate`, kept as documented: the command lives in gan/tools/evaluate.py."""

from .tools.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
