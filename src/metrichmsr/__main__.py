import sys

from metrichmsr.cli import main

sys.exit(main())
