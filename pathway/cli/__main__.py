import sys

from pathway.cli import main

sys.exit(main())
