"""`python -m llmrouter.doctor`: check the router's setup (see llmrouter.tools.doctor)."""

import sys

from llmrouter.tools.doctor import main

if __name__ == "__main__":
    sys.exit(main())
