"""``python -m grafana_agent_bridge`` is the ``grafana-agent-bridge`` command."""

import sys

from .cli import main

sys.exit(main())
