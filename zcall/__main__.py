import sys

from zcall.cli import main

sys.exit(main())
