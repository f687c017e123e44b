"""The swarm topology under mocks: placement, update and rollback, secrets, networks, hardening,
the registry image and the hooks, as issue 14 asks for them (on purpose, as literals)."""

from __future__ import annotations

import base64
import json

import pytest
from program import Deployment, Registered
from workspace import Workspace

from components.container_defaults import HARDENING

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
COMMAND = "command:local:Command"
SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}


@pytest.fixture
def swarm(workspace: Workspace) -> Deployment:
    return workspace.deploy("dev", {"cluster": SWARM, "api": {"replicas": 3}})


def service(deployment: Deployment, role: str) -> Registered:
    (only,) = [
        r for r in deployment.of_type(SERVICE) if {"label": "catalogizer.role", "value": role} in r.inputs["labels"]
    ]
    return only


def spec(resource: Registered) -> dict:
    return resource.inputs["taskSpec"]["containerSpec"]


def test_four_services_and_no_container(swarm: Deployment) -> None:
    assert swarm.of_type("docker:index/container:Container") == []
    names = sorted(r.inputs["name"] for r in swarm.of_type(SERVICE))
    assert names == [
        "catalogizer-dev-api",
        "catalogizer-dev-nginx",
        "catalogizer-dev-postgres",
        "catalogizer-dev-redis",
    ]
    assert swarm.outputs["services"] == {
        "postgres": "catalogizer-dev-postgres",
        "redis": "catalogizer-dev-redis",
        "api": "catalogizer-dev-api",
        "nginx": "catalogizer-dev-nginx",
    }


def test_api_is_replicated_spread_and_rolls_back_by_itself(swarm: Deployment) -> None:
    api = service(swarm, "api")
    assert api.inputs["mode"] == {"replicated": {"replicas": 3}}
    placement = api.inputs["taskSpec"]["placement"]
    assert placement == {"prefs": ["node.id"]}  # spread over nodes; no node is required
    assert api.inputs["updateConfig"] == {
        "parallelism": 1,
        "order": "start-first",
        "failureAction": "rollback",
        "monitor": "30s",
        "maxFailureRatio": "0",
    }
    assert api.inputs["rollbackConfig"] == {
        "parallelism": 1,
        "order": "start-first",
        "failureAction": "pause",
        "monitor": "30s",
        "maxFailureRatio": "0",
    }
    # `pulumi up` waits for convergence: a rolled-back update fails the run.
    assert api.inputs["convergeConfig"] == {"delay": "5s", "timeout": "180s"}
    assert spec(api)["healthcheck"]["tests"] == ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]


def test_api_image_is_pushed_and_referenced_by_digest(swarm: Deployment) -> None:
    (push,) = swarm.of_type("docker:index/registryImage:RegistryImage")
    (tag,) = swarm.of_type("docker:index/tag:Tag")
    assert tag.inputs["targetImage"].startswith("10.0.0.5:5000/catalogizer-dev-api:ctx-")
    assert push.inputs["name"] == tag.inputs["targetImage"] and push.inputs["keepRemotely"] is True
    image = spec(service(swarm, "api"))["image"]
    assert image.startswith("10.0.0.5:5000/catalogizer-dev-api@sha256:") and ":ctx-" not in image
    assert swarm.outputs["apiImage"] == image
    # The registry is checked by the preflight before anything is pushed to it.
    assert swarm.waits_for(tag, swarm.named("preflight-check"))


def test_placement_edge_and_data_nodes(swarm: Deployment) -> None:
    nginx, pg, redis = service(swarm, "nginx"), service(swarm, "postgres"), service(swarm, "redis")
    assert nginx.inputs["mode"] == {"global": True}
    assert nginx.inputs["taskSpec"]["placement"]["constraints"] == ["node.labels.catalogizer.edge==true"]
    for data in (pg, redis):
        assert data.inputs["mode"] == {"replicated": {"replicas": 1}}
        assert data.inputs["taskSpec"]["placement"]["constraints"] == ["node.labels.catalogizer.data==true"]
        # Never two database tasks on one volume.
        assert data.inputs["updateConfig"]["order"] == "stop-first"
    # Host mode on the edge nodes: client addresses reach nginx unchanged.
    assert nginx.inputs["endpointSpec"]["ports"] == [
        {"targetPort": 80, "publishedPort": 8080, "publishMode": "host"},
        {"targetPort": 443, "publishedPort": 8443, "publishMode": "host"},
    ]
    # Internal services: no published port; found by DNS round robin (tasks join once healthy).
    for role in ("api", "postgres", "redis"):
        assert service(swarm, role).inputs["endpointSpec"] == {"mode": "dnsrr"}, role


def test_data_volumes_live_on_the_data_node_protected(swarm: Deployment) -> None:
    (provider,) = swarm.of_type("pulumi:providers:docker")
    assert provider.inputs["host"] == "ssh://admin@data-1"
    volumes = {v.inputs["name"]: v for v in swarm.of_type("docker:index/volume:Volume")}
    assert set(volumes) == {"catalogizer-dev-postgres-data", "catalogizer-dev-redis-data"}
    for volume in volumes.values():
        assert volume.protect and volume.retain_on_delete
    mounts = {m["target"]: m for m in spec(service(swarm, "postgres"))["mounts"]}
    assert mounts["/var/lib/postgresql/data"] == {
        "target": "/var/lib/postgresql/data",
        "type": "volume",
        "source": "catalogizer-dev-postgres-data",
    }
    assert swarm.waits_for(service(swarm, "postgres"), volumes["catalogizer-dev-postgres-data"])
    assert swarm.waits_for(service(swarm, "redis"), volumes["catalogizer-dev-redis-data"])


def test_encrypted_overlays_front_and_back(swarm: Deployment) -> None:
    networks = {n.inputs["name"]: n for n in swarm.of_type("docker:index/network:Network")}
    assert set(networks) == {"catalogizer-dev-front", "catalogizer-dev-back"}
    for network in networks.values():
        assert network.inputs["driver"] == "overlay" and "encrypted" in network.inputs["options"]
        assert not network.inputs.get("attachable")
    front, back = "network-front-id", "network-back-id"
    joined = {
        role: [n["id"] for n in service(swarm, role).inputs["taskSpec"]["networksAdvanceds"]]
        for role in ("nginx", "api", "postgres", "redis")
    }
    assert joined == {"nginx": [front], "api": [front, back], "postgres": [back], "redis": [back]}


def test_passwords_are_swarm_secrets_where_the_image_reads_files(swarm: Deployment) -> None:
    pg = spec(service(swarm, "postgres"))
    assert pg["env"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-superuser-password"
    assert "POSTGRES_PASSWORD" not in pg["env"]
    (mounted,) = pg["secrets"]
    assert mounted["fileName"] == "/run/secrets/postgres-superuser-password"
    assert (mounted["fileUid"], mounted["fileGid"], mounted["fileMode"]) == ("0", "0", 0o440)
    secrets = {r.name: r for r in swarm.of_type(SECRET)}
    assert set(secrets) == {"data-postgres-password", "data-redis-conf", "proxy-tls-key"}
    password = swarm.outputs["postgresPassword"]
    assert base64.b64decode(secrets["data-postgres-password"].inputs["data"]).decode() == password
    redis_conf = base64.b64decode(secrets["data-redis-conf"].inputs["data"]).decode()
    assert "user default reset on #" in redis_conf and swarm.outputs["redisPassword"] not in redis_conf
    redis = spec(service(swarm, "redis"))
    # args, not commands: the image's entrypoint still runs (initdb for postgres), as on one host.
    assert redis["args"] == ["redis-server", "/etc/catalogizer-redis/redis.conf"] and "commands" not in redis
    assert spec(service(swarm, "postgres"))["args"][0] == "postgres" and "commands" not in spec(
        service(swarm, "postgres")
    )
    assert redis["secrets"][0]["fileName"] == "/etc/catalogizer-redis/redis.conf"
    for secret in secrets.values():
        assert secret.is_secret("data"), secret.name
        # A changed secret is a new one, created before the service moves to it.
        assert secret.delete_before_replace_defined and not secret.delete_before_replace


def test_nginx_gets_the_rendered_conf_and_certificate_as_configs(swarm: Deployment) -> None:
    nginx = spec(service(swarm, "nginx"))
    configs = {c["fileName"]: c for c in nginx["configs"]}
    assert set(configs) == {"/etc/nginx/live/current/nginx.conf", "/etc/nginx/live/current/tls/cert.pem"}
    (conf,) = [r for r in swarm.of_type(CONFIG) if r.name == "proxy-nginx-conf"]
    text = conf.inputs["dataRaw"]
    # The single-host renderer, pointed at the API service's alias (its VIP on the front overlay).
    assert "ssl_certificate tls/cert.pem;" in text and 'set $api_upstream "api";' in text
    (key,) = nginx["secrets"]
    assert key["fileName"] == "/etc/nginx/live/current/tls/key.pem" and key["fileMode"] == 0o400
    assert nginx["args"] == ["nginx", "-c", "/etc/nginx/live/current/nginx.conf", "-g", "daemon off;"]


def test_no_password_in_any_plain_input(swarm: Deployment) -> None:
    passwords = [swarm.outputs[k] for k in ("adminPassword", "postgresPassword", "redisPassword")]
    api_env = spec(service(swarm, "api"))["env"]
    passwords += [api_env["JWT_SECRET"], api_env["DATABASE_PASSWORD"]]
    assert all(len(p) >= 24 for p in passwords)
    leaks = swarm.plain_secret_leaks(passwords)
    assert not leaks, f"a password in plain text: {leaks}"
    for name in ("adminPassword", "postgresPassword", "redisPassword"):
        assert name in swarm.secret_outputs


def test_every_service_gets_its_role_hardening(swarm: Deployment) -> None:
    for role in ("api", "nginx", "postgres", "redis"):
        container = spec(service(swarm, role))
        hardening = HARDENING[role]
        assert container["capDrops"] == ["ALL"], role
        assert container.get("capAdds", []) == list(hardening.cap_add), role
        assert container.get("readOnly", False) == hardening.read_only, role
        tmpfs = sorted(m["target"] for m in container["mounts"] if m["type"] == "tmpfs" and m["target"] != "/dev/shm")
        assert tmpfs == sorted(hardening.tmpfs), role
        limits = service(swarm, role).inputs["taskSpec"]["resources"]["limits"]
        assert limits["nanoCpus"] > 0 and limits["memoryBytes"] >= 64 * 1024 * 1024, role
        assert service(swarm, role).inputs["taskSpec"]["logDriver"] == {
            "name": "json-file",
            "options": {"max-size": "10m", "max-file": "5"},
        }
    assert spec(service(swarm, "redis"))["user"] == "999:0"
    assert spec(service(swarm, "postgres"))["user"] == "70:0"


def test_hooks_reach_postgres_on_the_data_node_and_gate_the_api(swarm: Deployment) -> None:
    backup, roles = swarm.named("pre-update-backup-pg-dump"), swarm.named("db-roles-api-role")
    for hook in (backup, roles):
        environment = hook.inputs["environment"]
        assert environment["PG_SERVICE"] == "catalogizer-dev-postgres"
        assert environment["DOCKER_HOST"] == "ssh://admin@data-1"
        assert "PG_CONTAINER" not in environment
        assert hook.is_secret("environment.PGPASSWORD")
    api = service(swarm, "api")
    for gate in (backup, roles, swarm.named("preflight-check"), service(swarm, "postgres"), service(swarm, "redis")):
        assert swarm.waits_for(api, gate), gate.name
    assert swarm.waits_for(service(swarm, "nginx"), api)


def test_preflight_and_health_hooks(swarm: Deployment) -> None:
    preflight = swarm.named("preflight-check")
    assert preflight.inputs["create"] == "python3 scripts/swarm_preflight.py"
    assert {
        k: preflight.inputs["environment"][k] for k in ("EDGE_LABEL", "DATA_LABEL", "REGISTRY", "DATA_NODE_HOST")
    } == {
        "EDGE_LABEL": "catalogizer.edge",
        "DATA_LABEL": "catalogizer.data",
        "REGISTRY": "10.0.0.5:5000",
        "DATA_NODE_HOST": "ssh://admin@data-1",
    }
    for role in ("postgres", "redis"):
        assert swarm.waits_for(service(swarm, role), preflight), role
    health = swarm.named("health-verify")
    assert health.inputs["create"] == "python3 scripts/swarm_health.py"
    services = health.inputs["environment"]["SWARM_SERVICES"].split(",")
    assert sorted(services) == sorted(r.inputs["name"] for r in swarm.of_type(SERVICE))
    for svc in swarm.of_type(SERVICE):
        assert swarm.waits_for(health, svc)


def test_a_new_api_image_changes_the_rollout_a_new_password_the_secret_only(workspace: Workspace) -> None:
    one = workspace.deploy("dev", {"cluster": SWARM})
    two = workspace.deploy("dev", {"cluster": SWARM, "api": {"goVersion": "1.26"}})
    rollout = [d.named("pre-update-backup-pg-dump").inputs["triggers"] for d in (one, two)]
    assert rollout[0] != rollout[1]
    assert spec(service(one, "api"))["image"] != spec(service(two, "api"))["image"]
    # Same settings, same graph: nothing differs between two runs (no run-dependent input).
    again = workspace.deploy("dev", {"cluster": SWARM})
    dump = [
        json.dumps(sorted((r.name, json.dumps(r.inputs, sort_keys=True)) for r in d.resources)) for d in (one, again)
    ]
    assert dump[0] == dump[1]


@pytest.mark.parametrize(("registry", "scheme"), [("10.0.0.5:5000", "https"), ("http://10.0.0.5:5000", "http")])
def test_preflight_checks_the_registry_scheme_and_free_space(workspace: Workspace, registry: str, scheme: str) -> None:
    found = {"manager": "m", "freeGb": {"dockerRoot": 30.0, "backupDir": 40.0}, "registry": f"{scheme}://r"}
    overrides = {"cluster": {**SWARM, "registry": registry}, "preflight": {"minFreeGb": 25}}
    swarm = workspace.deploy("dev", overrides, command_stdout={"preflight-check": json.dumps(found)})
    environment = swarm.named("preflight-check").inputs["environment"]
    # The address without its scheme, and exactly the scheme the engines pull over.
    assert (environment["REGISTRY"], environment["REGISTRY_SCHEME"]) == ("10.0.0.5:5000", scheme)
    # The single-host preflight's disk check, pointed at the data node: the same floor, folder and image.
    single = workspace.deploy("dev", {"preflight": {"minFreeGb": 25}}).named("preflight-checks")
    disk = ("PREFLIGHT_MIN_FREE_GB", "BACKUP_DIR", "PREFLIGHT_PROBE_IMAGE")
    assert {k: environment[k] for k in disk} == {k: single.inputs["environment"][k] for k in disk}
    assert (environment["PREFLIGHT_MIN_FREE_GB"], environment["PREFLIGHT_PROBE_IMAGE"]) == ("25", "postgres:15-alpine")
    assert environment["DATA_NODE_HOST"] == "ssh://admin@data-1"
    assert swarm.outputs["preflight"]["freeGb"] == {"dockerRoot": 30.0, "backupDir": 40.0}
