"""`python -m gan.quiz stats [--db PATH] [--json]`."""

from .cli import main

raise SystemExit(main())
