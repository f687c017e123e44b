"""One Swarm service with a secret, a config and an overlay, for the swarm provider-rule tests.

Config (namespace `sw`): `name`, `image`, `command` (JSON list), `replicas`, `secret`, `config`.
The task serves HTTP on 8000 and is healthy once it answers there; `command` decides whether it does.
"""

import base64
import json

import pulumi
import pulumi_docker as docker

config = pulumi.Config("sw")
name = config.require("name")
network = docker.Network("net", name=f"{name}-net", driver="overlay")
secret = docker.Secret(
    "secret",
    data=base64.b64encode(config.require("secret").encode()).decode(),
    opts=pulumi.ResourceOptions(delete_before_replace=False),
)
conf = docker.ServiceConfig(
    "conf", data_raw=config.require("config"), opts=pulumi.ResourceOptions(delete_before_replace=False)
)
step = {"parallelism": 1, "order": "start-first", "monitor": "5s", "max_failure_ratio": "0"}
service = docker.Service(
    "svc",
    name=name,
    mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=config.require_int("replicas"))),
    task_spec=docker.ServiceTaskSpecArgs(
        container_spec=docker.ServiceTaskSpecContainerSpecArgs(
            image=config.require("image"),
            commands=json.loads(config.require("command")),
            healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                tests=[
                    "CMD",
                    "python3",
                    "-c",
                    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')",
                ],
                interval="1s",
                timeout="2s",
                retries=2,
            ),
            secrets=[
                docker.ServiceTaskSpecContainerSpecSecretArgs(
                    secret_id=secret.id, secret_name=secret.name, file_name="/run/secrets/value", file_mode=0o400
                )
            ],
            configs=[
                docker.ServiceTaskSpecContainerSpecConfigArgs(
                    config_id=conf.id, config_name=conf.name, file_name="/etc/sw.conf"
                )
            ],
            stop_grace_period="2s",
        ),
        networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id, aliases=["sw"])],
        placement=docker.ServiceTaskSpecPlacementArgs(prefs=["node.id"]),
    ),
    endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
    update_config=docker.ServiceUpdateConfigArgs(**step, failure_action="rollback"),
    rollback_config=docker.ServiceRollbackConfigArgs(**step, failure_action="pause"),
    converge_config=docker.ServiceConvergeConfigArgs(delay="2s", timeout="90s"),
)
pulumi.export("service", service.name)
pulumi.export("secret", secret.name)
