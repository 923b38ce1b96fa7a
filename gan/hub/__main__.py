"""`python -m gan.hub push DIR REPO_ID` (gan/publish.py)."""

from ..publish import main

raise SystemExit(main())
