"""`python -m gan.invert`, kept as documented: the command lives in gan/explore/invert.py."""

from .explore.invert import main

if __name__ == "__main__":
    raise SystemExit(main())
