"""`python -m gan.hub push DIR REPO_ID` (gan/sharing/publish.py)."""

from ..sharing.publish import main

raise SystemExit(main())
