import sys

from pocketbert.cli.main import main

sys.exit(main())
