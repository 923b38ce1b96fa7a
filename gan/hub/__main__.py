"""`python -m gan.hub push DIR REPO_ID`."""

from . import main

raise SystemExit(main())
