"""`python -m gan.directions`, kept as documented: the command lives in gan/explore/directions.py."""

from .explore.directions import main

if __name__ == "__main__":
    raise SystemExit(main())
