from __future__ import annotations

from program import Deployment
from workspace import Workspace

NOTES_VARIABLES = {
    "HOST": "0.0.0.0",
    "PORT": "8080",
    "GIN_MODE": "release",
    "DATABASE_TYPE": "postgres",
    "DATABASE_HOST": "postgres",
    "DATABASE_PORT": "5432",
    "DATABASE_NAME": "catalogizer",
    "DATABASE_USER": "catalogizer",
    "DATABASE_SSL_MODE": "disable",
    "REDIS_ADDR": "redis:6379",
    "ADMIN_USERNAME": "admin",
    "CORS_ALLOWED_ORIGINS": "https://catalogizer.example.com",
    "APP_ENV": "production",
    "LOG_LEVEL": "info",
    "SMB_ENABLED": "true",
    "MEDIA_ROOT_PATH": "/media",
    # The runbook's names, for older builds.
    "API_PORT": "8080",
    "POSTGRES_DB": "catalogizer",
    "POSTGRES_USER": "catalogizer",
    "REDIS_HOST": "redis",
    "REDIS_PORT": "6379",
}


def test_api_environment_has_every_variable_the_code_reads(prod: Deployment) -> None:
    api = prod.container("api")
    env = prod.env(api)
    for key, value in NOTES_VARIABLES.items():
        assert env[key] == value, key
    assert env["DATABASE_PASSWORD"] == env["POSTGRES_PASSWORD"] == prod.outputs["postgresPassword"]
    assert env["REDIS_PASSWORD"] == prod.outputs["redisPassword"]
    assert env["ADMIN_PASSWORD"] == prod.outputs["adminPassword"]
    assert len(env["JWT_SECRET"]) >= 48
    assert api.is_secret("envs")


def test_api_container_shape(prod: Deployment) -> None:
    api = prod.container("api")
    media, logs = api.inputs["mounts"]
    assert media == {"target": "/media", "type": "bind", "source": "/opt/catalogizer/media", "readOnly": True}
    assert logs == {"target": "/app/logs", "type": "volume", "source": "catalogizer-api-logs"}
    assert api.inputs["healthcheck"]["tests"] == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://localhost:8080/health",
    ]
    assert api.inputs["wait"] is True and api.inputs["restart"] == "unless-stopped"
    assert api.inputs["memory"] == 2048
    assert api.inputs["networksAdvanced"] == [{"name": "catalogizer-net", "aliases": ["api"]}]


def test_api_can_be_replaced_before_the_old_container_goes(prod: Deployment) -> None:
    api = prod.container("api")
    # A fixed name or host port would force delete-before-replace, i.e. downtime.
    assert api.name.startswith("catalogizer-api-") and api.state["name"] != api.name  # autonamed
    assert not api.inputs.get("ports")
    # pulumi-docker makes every container delete-first unless the program says otherwise.
    assert api.delete_before_replace_defined is True and api.delete_before_replace is False


def test_fixed_name_containers_are_replaced_delete_first(prod: Deployment) -> None:
    fixed = [c for c in prod.of_type("docker:index/container:Container") if c.inputs.get("name")]
    roles = {label["value"] for c in fixed for label in c.inputs["labels"] if label["label"] == "catalogizer.role"}
    monitoring = {
        "prometheus",
        "grafana",
        "alertmanager",
        *(f"{s}-exporter" for s in ("postgres", "redis", "nginx", "blackbox")),
    }
    assert roles == {"postgres", "redis", "nginx", "backup-scheduler", *monitoring}
    for container in fixed:
        assert container.delete_before_replace_defined and container.delete_before_replace, container.name


def test_every_container_is_replaced_after_a_failed_wait_or_a_new_health_check(prod: Deployment) -> None:
    for container in prod.of_type("docker:index/container:Container"):
        assert container.replace_on_changes == ["#initerror", "healthcheck"], container.name
        assert container.inputs["wait"] is True and container.inputs["waitTimeout"] == 180, container.name
        # No perpetual memory-swap diff, and raising memory later stays possible.
        assert container.inputs["memorySwap"] == container.inputs["memory"] > 0, container.name


def test_api_waits_for_healthy_postgres_and_redis(prod: Deployment) -> None:
    api = prod.container("api")
    for role in ("postgres", "redis"):
        dependency = prod.container(role)
        assert prod.waits_for(api, dependency), role
        # Their create only completes once Docker reports them healthy.
        assert dependency.inputs["wait"] is True and dependency.inputs["healthcheck"]["tests"]


def test_replicas_share_the_api_alias(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"api": {"replicas": 3}})
    replicas = deployment.containers("api")
    assert len(replicas) == 3
    assert {tuple(r.inputs["networksAdvanced"][0]["aliases"]) for r in replicas} == {("api",)}
    assert len({r.state["name"] for r in replicas}) == 3
    assert len(deployment.outputs["containers"]["api"]) == 3


def test_image_built_from_checkout_root(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"api": {"goVersion": "1.21"}})
    (build,) = deployment.of_type("docker:index/image:Image")
    checkout = workspace.project.parent / "Catalogizer"
    assert build.inputs["build"]["context"] == str(checkout)
    assert build.inputs["build"]["dockerfile"] == str(checkout / "catalog-api" / "Dockerfile")
    assert build.inputs["build"]["args"] == {"GO_VERSION": "1.21"}
    assert build.inputs["skipPush"] is True
    assert deployment.container("api").inputs["image"] == build.state["repoDigest"]


def test_prebuilt_image_reference(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"api": {"source": None, "image": "registry.example.com/catalog-api:2.1"}})
    assert not deployment.of_type("docker:index/image:Image")
    prebuilt = deployment.named("api-image-prebuilt")
    assert prebuilt.inputs["name"] == "registry.example.com/catalog-api:2.1"
    assert deployment.container("api").inputs["image"] == prebuilt.state["imageId"]


def test_new_image_digest_changes_the_container_image(workspace: Workspace) -> None:
    old = workspace.deploy("dev").container("api").inputs["image"]
    new = workspace.deploy("dev", {"api": {"goVersion": "1.26"}}).container("api").inputs["image"]
    assert old != new


def test_images_are_built_for_the_configured_docker_host_platform(workspace: Workspace) -> None:
    default = workspace.deploy("prod")
    builds = default.of_type("docker:index/image:Image")
    assert len(builds) == 2  # the API and the backup scheduler
    assert {b.inputs["build"]["platform"] for b in builds} == {"linux/amd64"}
    assert default.named("preflight-checks").inputs["environment"]["PREFLIGHT_PLATFORM"] == "linux/amd64"
    arm = workspace.deploy("prod", {"api": {"platform": "linux/arm64"}})
    assert {b.inputs["build"]["platform"] for b in arm.of_type("docker:index/image:Image")} == {"linux/arm64"}
    assert arm.named("preflight-checks").inputs["environment"]["PREFLIGHT_PLATFORM"] == "linux/arm64"


def test_the_health_wait_timeout_is_configurable(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"health": {"waitTimeoutSeconds": 30}})
    assert {c.inputs["waitTimeout"] for c in deployment.of_type("docker:index/container:Container")} == {30}
