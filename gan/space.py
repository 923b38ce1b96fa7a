"""`python -m gan.space`, kept as documented: the command lives in gan/tools/space.py."""

from .tools.space import main

if __name__ == "__main__":
    raise SystemExit(main())
