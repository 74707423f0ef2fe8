import sys

from glsmonai.cli import main

sys.exit(main())
