"""Catalogizer: load config, declare the stack for its topology, export.

components/topology is where one Docker host and a Docker Swarm differ (catalogizer:cluster.mode);
everything else (settings, renderers, hook scripts, hardening) serves both.
"""

import pulumi

from components.topology import deploy
from settings import load_settings

settings = load_settings()
for name, value in deploy(settings).items():
    pulumi.export(name, value)
