import sys

from jaxlimit.cli import main

sys.exit(main())
