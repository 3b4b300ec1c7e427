"""``python -m vadusa.cli``: what torchrun and the tests run."""

import sys

from vadusa.cli import main

sys.exit(main())
