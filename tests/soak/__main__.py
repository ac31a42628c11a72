"""`python -m tests.soak`: see tests/soak/soak.py."""

import sys

from tests.soak.soak import main

sys.exit(main())
