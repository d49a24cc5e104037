"""`python -m llmrouter.report`: the traffic report (see llmrouter.tools.report)."""

import sys

from llmrouter.tools.report import main

if __name__ == "__main__":
    sys.exit(main())
