"""`python -m gan.sample`, kept as documented: the command lives in gan/tools/sample.py."""

from .tools.sample import main

if __name__ == "__main__":
    raise SystemExit(main())
