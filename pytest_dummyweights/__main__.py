import sys

from pytest_dummyweights.cli import main

sys.exit(main())
