"""mitmproxy script: `mitmdump -s addon/router.py`. Everything lives in the llmrouter package."""

import sys
from pathlib import Path

# Importable from a plain checkout, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from llmrouter.proxy.addon import Router

addons = [Router()]
