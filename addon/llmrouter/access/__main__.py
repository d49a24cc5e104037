import sys

from llmrouter.access.cli import main

sys.exit(main())
