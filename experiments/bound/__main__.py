"""`python -m experiments.bound CONFIG...`: print the bound (see `experiments.bound.report`)."""

import sys

from experiments.bound.report import main

sys.exit(main())
