from __future__ import annotations

from program import Deployment
from workspace import Workspace

RANDOM = "random:index/randomPassword:RandomPassword"
SUPPLIED_JWT = "an-operator-supplied-jwt-secret-of-plenty-length-0123456789"


def test_every_secret_is_generated_when_not_configured(dev: Deployment) -> None:
    generated = {r.name: r.inputs for r in dev.of_type(RANDOM)}
    assert set(generated) == {
        "secrets-postgresPassword",
        "secrets-postgresApiPassword",
        "secrets-postgresMonitorPassword",
        "secrets-redisPassword",
        "secrets-jwtSecret",
        "secrets-adminPassword",
        "secrets-grafanaPassword",
    }
    assert generated["secrets-jwtSecret"]["length"] >= 48
    assert all(inputs["special"] is False for inputs in generated.values())
    assert all(r.parent.endswith("catalogizer:security:Secrets::secrets") for r in dev.of_type(RANDOM))


def test_generated_values_are_stable_inputs_across_runs(workspace: Workspace) -> None:
    # Inputs that depend on nothing else in the stack: a change of image, replicas or
    # domain must not make the provider generate new values.
    first = {r.name: r.inputs for r in workspace.deploy("dev").of_type(RANDOM)}
    other = workspace.deploy("dev", {"api": {"replicas": 3, "goVersion": "1.26"}, "domain": "other.example.com"})
    assert {r.name: r.inputs for r in other.of_type(RANDOM)} == first
    # No keepers: the provider keeps the stored value on every `pulumi up`.
    assert not any("keepers" in inputs for inputs in first.values())


def test_supplied_secret_replaces_the_generated_one(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", secrets={"jwtSecret": SUPPLIED_JWT})
    assert "secrets-jwtSecret" not in {r.name for r in deployment.of_type(RANDOM)}
    api = deployment.container("api")
    assert deployment.env(api)["JWT_SECRET"] == SUPPLIED_JWT
    assert api.is_secret("envs")


def test_password_outputs_are_secret(prod: Deployment) -> None:
    for name in ("adminPassword", "postgresPassword", "redisPassword", "grafanaPassword"):
        assert name in prod.secret_outputs
        assert prod.outputs[name]
    for name in ("url", "healthUrl", "adminUsername", "containers", "network", "volumes", "tlsCertificate"):
        assert name not in prod.secret_outputs


def test_no_secret_value_is_plain_anywhere(workspace: Workspace) -> None:
    deployment = workspace.deploy("prod", secrets={"jwtSecret": SUPPLIED_JWT})
    secret_values = [deployment.outputs[k] for k in ("adminPassword", "postgresPassword", "redisPassword")]
    secret_values.append(SUPPLIED_JWT)
    for resource in deployment.resources:
        for path, text in _strings(resource.inputs):
            for value in secret_values:
                if value in text:
                    assert resource.is_secret(path), f"{resource.name}.{path} holds a secret in plain"
    for name, value in deployment.outputs.items():
        if name not in deployment.secret_outputs:
            assert not any(secret in str(value) for secret in secret_values), name


def _strings(value: object, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, f"{path}[{i}]")]
    return []


def test_generated_postgres_password_outlives_a_destroy(dev: Deployment) -> None:
    # The data volume survives `pulumi destroy` and keeps the password it was initialised with.
    protected = {r.name for r in dev.of_type(RANDOM) if r.protect}
    assert protected == {"secrets-postgresPassword"}
