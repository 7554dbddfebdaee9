"""``python -m local_stack``: see :mod:`local_stack.cli`."""

from local_stack.cli import main

raise SystemExit(main())
