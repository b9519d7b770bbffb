import sys

from mmxfer.cli import main

sys.exit(main())
