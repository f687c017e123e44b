"""The swarm data tier of the real program: its Secrets, SwarmNetwork and SwarmData components
(PostgreSQL and Redis pinned to the data node, their volumes created there through an explicit
provider), for the rehearsal on the test swarm. Config: the catalogizer stack settings."""

import pulumi

from components.secrets import Secrets, SecretsArgs
from components.swarm.data import SwarmData, SwarmDataArgs
from components.swarm.network import SwarmNetwork, SwarmNetworkArgs
from settings import load_settings

settings = load_settings()
secrets = Secrets("secrets", SecretsArgs(settings))
network = SwarmNetwork("network", SwarmNetworkArgs(settings))
data = SwarmData("data", SwarmDataArgs(settings, network.back, secrets.postgres_password, secrets.redis_password))
pulumi.export("services", {"postgres": data.postgres_service, "redis": data.redis_service})
pulumi.export("volumes", data.volumes)
pulumi.export("postgresPassword", pulumi.Output.secret(secrets.postgres_password))
