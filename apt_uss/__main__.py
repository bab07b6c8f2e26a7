import sys

from apt_uss.cli import main

sys.exit(main())
