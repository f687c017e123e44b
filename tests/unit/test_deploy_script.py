"""deploy.sh: Docker check, CLI install, Catalogizer clone, local backend, passphrase file, `pulumi up`.

Each test runs a copy of deploy.sh in its own project folder with fake `docker` and `pulumi`
executables; the Pulumi release is served by a local HTTP server (127.0.0.1 only) and the
Catalogizer repository is a local bare repository.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import platform
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.272.0"
SYSTEM_PATH = "/usr/bin:/bin"  # Debian's tools; a pulumi in /usr/local/bin stays out of sight
URL = "https://localhost:8443"

FAKE_PULUMI = f"""#!/bin/sh
if [ "$1" = version ]; then echo v{VERSION}; exit 0; fi
echo "$* | $PULUMI_BACKEND_URL | $PULUMI_CONFIG_PASSPHRASE_FILE" >> "$FAKE_LOG"
if [ "$1 $2 $3" = "stack output url" ]; then echo {URL}; fi
exit 0
"""
FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "$FAKE_LOG"
if [ "$FAKE_DOCKER" = down ]; then
    echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
    exit 1
fi
echo 24.0.7
"""


def _platform() -> str:
    system = {"Linux": "linux", "Darwin": "darwin"}[platform.system()]
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    return f"{system}-{machine}"


ARCHIVE = f"pulumi-v{VERSION}-{_platform()}.tar.gz"
CHECKSUMS = f"pulumi-{VERSION}-checksums.txt"


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass
class Env:
    """A project folder beside a Catalogizer checkout, a fake bin/ and a home."""

    tmp: Path
    project: Path
    bin: Path
    home: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def catalogizer_home(self) -> Path:
        return self.home / ".catalogizer"

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def pulumi_calls(self) -> list[str]:
        return [c for c in self.calls() if not c.startswith("docker ")]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "FAKE_LOG": str(self.log),
            **self.extra,
        }
        return subprocess.run(
            ["bash", str(self.project / "deploy.sh"), *args],
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Env:
    assert shutil.which("pulumi", path=SYSTEM_PATH) is None, "these tests need a PATH without a real pulumi"
    project = tmp_path / "catalogizer-deploy"
    project.mkdir()
    shutil.copy2(ROOT / "deploy.sh", project / "deploy.sh")
    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        shutil.copy2(stack_file, project / stack_file.name)
    # The project's virtualenv exists (Pulumi would otherwise create it on the first `up`).
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    for checkout in ("Catalogizer", "catalogizer"):
        dockerfile = tmp_path / checkout / "catalog-api" / "Dockerfile"
        dockerfile.parent.mkdir(parents=True)
        dockerfile.write_text("FROM scratch\n")
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "docker", FAKE_DOCKER)
    home = tmp_path / "home"
    home.mkdir()
    return Env(tmp_path, project, bin_dir, home, tmp_path / "calls.log")


def with_fake_pulumi(env: Env) -> Env:
    _executable(env.bin / "pulumi", FAKE_PULUMI)
    return env


# -- backend, passphrase, stack selection, `pulumi up`, the closing summary --------------------------


def test_first_deploy_creates_state_and_passphrase_then_runs_up(env: Env) -> None:
    result = with_fake_pulumi(env).run("dev", "--yes")
    assert result.returncode == 0, result.stderr
    home = env.catalogizer_home
    passphrase = home / "passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600 and len(passphrase.read_text().strip()) >= 40
    assert (home / "state").is_dir()
    backend = f"file://{home}/state"
    assert env.pulumi_calls() == [
        f"stack select --create dev | {backend} | {passphrase}",
        f"up --stack dev --yes | {backend} | {passphrase}",
        f"stack output url --stack dev | {backend} | {passphrase}",
    ]
    assert "back it up" in result.stderr
    # The passphrase itself is never printed nor on any command line.
    secret = passphrase.read_text().strip()
    assert secret not in result.stdout + result.stderr
    assert not any(secret in call for call in env.calls())


def test_the_end_says_where_the_stack_its_password_state_and_passphrase_are(env: Env) -> None:
    result = with_fake_pulumi(env).run("dev")
    assert result.returncode == 0, result.stderr
    tail = result.stderr[result.stderr.index("dev is up") :]
    assert f"dev is up at {URL}" in tail
    assert "pulumi stack output adminPassword --show-secrets --stack dev" in tail
    assert f"file://{env.catalogizer_home}/state" in tail
    assert str(env.catalogizer_home / "passphrase") in tail


def test_second_deploy_keeps_the_passphrase(env: Env) -> None:
    with_fake_pulumi(env).run("dev")
    passphrase = (env.catalogizer_home / "passphrase").read_text()
    assert env.run("prod").returncode == 0
    assert (env.catalogizer_home / "passphrase").read_text() == passphrase


def test_unknown_stack_is_refused(env: Env) -> None:
    result = with_fake_pulumi(env).run("qa")
    assert result.returncode == 2 and "no Pulumi.qa.yaml" in result.stderr
    assert env.calls() == []


def test_a_failed_up_fails_the_deploy_without_the_success_summary(env: Env) -> None:
    failing = 'if [ "$1" = up ]; then echo "error: health check failed" >&2; exit 255; fi\n'
    _executable(env.bin / "pulumi", FAKE_PULUMI.replace("\nexit 0\n", "\n" + failing + "exit 0\n"))
    result = env.run("dev")
    assert result.returncode == 255
    assert "health check failed" in result.stderr and "is up" not in result.stderr


# -- Docker first ------------------------------------------------------------------------------------


def test_docker_that_does_not_answer_stops_everything_and_names_the_fix(env: Env) -> None:
    with_fake_pulumi(env).extra["FAKE_DOCKER"] = "down"
    result = env.run("dev", "--yes")
    assert result.returncode == 1
    assert "the Docker engine does not answer" in result.stderr
    assert "systemctl start docker" in result.stderr
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert env.pulumi_calls() == []
    assert not env.catalogizer_home.exists()


def test_missing_docker_command_names_the_install(env: Env) -> None:
    (env.bin / "docker").unlink()
    # Every system command but docker, through a folder of links.
    system = env.tmp / "system-without-docker"
    system.mkdir()
    for folder in reversed(SYSTEM_PATH.split(":")):
        for tool in Path(folder).iterdir() if Path(folder).is_dir() else ():
            if tool.name != "docker":
                (system / tool.name).unlink(missing_ok=True)
                (system / tool.name).symlink_to(tool)
    env.extra["PATH"] = f"{env.bin}:{system}"
    result = with_fake_pulumi(env).run("dev")
    assert result.returncode == 1
    assert "the docker command is missing" in result.stderr and "docs.docker.com/engine/install" in result.stderr
    assert env.pulumi_calls() == []


# -- the Pulumi CLI from a (local) release server ----------------------------------------------------


def _fake_release(version: str = VERSION) -> bytes:
    """A release archive laid out like Pulumi's: pulumi/pulumi plus a language host."""
    buffer = io.BytesIO()
    cli = FAKE_PULUMI.replace(f"echo v{VERSION}", f"echo v{version}")
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("pulumi/pulumi", cli), ("pulumi/pulumi-language-python", "#!/bin/sh\nexit 0\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        type(self).requests.append(self.path)


@pytest.fixture
def release(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """Serves tmp/release on 127.0.0.1; yields (base URL, folder, requested paths)."""
    folder = tmp_path / "release"
    folder.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_Quiet,), {"requests": requests})

    def factory(*args: object, **kwargs: object) -> http.server.SimpleHTTPRequestHandler:
        return handler(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/releases/sdk", folder, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _publish(folder: Path, archive: bytes, listed_sha: str | None = None) -> None:
    sdk = folder / "releases" / "sdk"
    sdk.mkdir(parents=True, exist_ok=True)
    (sdk / ARCHIVE).write_bytes(archive)
    sha = listed_sha or hashlib.sha256(archive).hexdigest()
    other = "0" * 64
    (sdk / CHECKSUMS).write_text(
        f"{other}  pulumi-v{VERSION}-windows-x64.zip\n{sha}  {ARCHIVE}\n{other}  pulumi-v{VERSION}-other-arch.tar.gz\n"
    )


def _no_staging_left(env: Env) -> None:
    home = env.catalogizer_home
    assert not home.exists() or not list(home.glob(".pulumi-install.*")), list(home.iterdir())


def test_missing_cli_is_installed_when_the_checksum_matches(env: Env, release: tuple[str, Path, list[str]]) -> None:
    base, folder, requests = release
    _publish(folder, _fake_release())
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev", "--yes")
    assert result.returncode == 0, result.stderr
    installed = env.catalogizer_home / "bin" / "pulumi"
    assert os.access(installed, os.X_OK)
    assert (env.catalogizer_home / "bin" / "pulumi-language-python").is_file()
    assert "matches Pulumi's published checksum" in result.stderr
    assert requests == [f"/releases/sdk/{CHECKSUMS}", f"/releases/sdk/{ARCHIVE}"]
    # The installed CLI is the one that ran the deploy.
    assert [c.split(" | ")[0] for c in env.pulumi_calls()] == [
        "stack select --create dev",
        "up --stack dev --yes",
        "stack output url --stack dev",
    ]
    _no_staging_left(env)

    # Next time it is found in ~/.catalogizer/bin and nothing is downloaded again.
    requests.clear()
    assert env.run("dev").returncode == 0
    assert requests == []


def test_checksum_mismatch_installs_nothing(env: Env, release: tuple[str, Path, list[str]]) -> None:
    base, folder, _ = release
    _publish(folder, _fake_release(), listed_sha="ab" * 32)
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev", "--yes")
    assert result.returncode == 1
    assert f"checksum mismatch for {ARCHIVE}" in result.stderr and "Nothing was installed" in result.stderr
    assert not (env.catalogizer_home / "bin").exists()
    assert env.pulumi_calls() == []
    _no_staging_left(env)


def test_failed_download_installs_nothing(env: Env, release: tuple[str, Path, list[str]]) -> None:
    base, folder, _ = release
    _publish(folder, _fake_release())
    (folder / "releases" / "sdk" / ARCHIVE).unlink()  # the checksums file is there, the archive 404s
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev", "--yes")
    assert result.returncode == 1
    assert f"could not download {base}/{ARCHIVE}; nothing was installed" in result.stderr
    assert not (env.catalogizer_home / "bin").exists()
    _no_staging_left(env)


def test_archive_without_the_checksum_listed_installs_nothing(env: Env, release: tuple[str, Path, list[str]]) -> None:
    base, folder, _ = release
    _publish(folder, _fake_release())
    (folder / "releases" / "sdk" / CHECKSUMS).write_text("0" * 64 + "  pulumi-v0.0.0-linux-x64.tar.gz\n")
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev", "--yes")
    assert result.returncode == 1 and f"lists no checksum for {ARCHIVE}" in result.stderr
    assert not (env.catalogizer_home / "bin").exists()


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"\x1f\x8b truncated, not a gzip stream", f"{ARCHIVE} does not unpack; nothing was installed"),
        ("wrong-version", "reports v3.1.0, not v3.272.0; nothing was installed"),
    ],
)
def test_an_archive_that_matches_its_checksum_but_is_unusable_installs_nothing(
    env: Env, release: tuple[str, Path, list[str]], archive: bytes | str, message: str
) -> None:
    base, folder, _ = release
    if archive == "wrong-version":
        archive = _fake_release(version="3.1.0")
    assert isinstance(archive, bytes)
    _publish(folder, archive)
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev", "--yes")
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (env.catalogizer_home / "bin").exists()
    _no_staging_left(env)


def test_without_yes_and_without_a_terminal_nothing_is_downloaded(
    env: Env, release: tuple[str, Path, list[str]]
) -> None:
    base, folder, requests = release
    _publish(folder, _fake_release())
    env.extra["CATALOGIZER_PULUMI_DOWNLOAD_URL"] = base
    result = env.run("dev")
    assert result.returncode == 1
    assert f"Install Pulumi {VERSION} into" in result.stderr and "rerun with --yes" in result.stderr
    assert requests == []
    assert not (env.catalogizer_home / "bin").exists()


# -- the Catalogizer checkout --------------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": SYSTEM_PATH,
        "HOME": str(cwd or Path.cwd()),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.file.allow",
        "GIT_CONFIG_VALUE_0": "always",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, str, str]:
    """A bare Catalogizer-like repository with one submodule; yields (url, first commit, second commit)."""
    work = tmp_path / "upstream-work"
    sub_work = tmp_path / "sub-work"
    for folder in (work, sub_work):
        folder.mkdir()
        _git("init", "--quiet", "--initial-branch=main", cwd=folder)
    (sub_work / "auth.go").write_text("package auth\n")
    _git("add", ".", cwd=sub_work)
    _git("commit", "--quiet", "-m", "auth", cwd=sub_work)
    sub_bare = tmp_path / "Auth.git"
    _git("clone", "--quiet", "--bare", str(sub_work), str(sub_bare), cwd=tmp_path)

    (work / "catalog-api").mkdir()
    (work / "catalog-api" / "Dockerfile").write_text("FROM scratch\nCOPY submodules/auth/ /auth/\n")
    _git("submodule", "--quiet", "add", str(sub_bare), "submodules/auth", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "--quiet", "-m", "known good", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "catalog-api" / "Dockerfile").write_text("FROM scratch\n# newer, not yet known to be good\n")
    _git("commit", "--quiet", "-am", "newer", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "Catalogizer.git"
    _git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare, first, second


def _clone_env(env: Env, upstream: tuple[Path, str, str]) -> Env:
    bare, first, _ = upstream
    shutil.rmtree(env.tmp / "Catalogizer")
    env.extra.update(
        {
            "CATALOGIZER_REPO_URL": str(bare),
            "CATALOGIZER_COMMIT": first,
            # Local submodules need file:// allowed (git >= 2.38.1 refuses it by default).
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "protocol.file.allow",
            "GIT_CONFIG_VALUE_0": "always",
        }
    )
    return with_fake_pulumi(env)


def test_missing_checkout_is_cloned_with_submodules_at_the_pinned_commit(
    env: Env, upstream: tuple[Path, str, str]
) -> None:
    _, first, second = upstream
    result = _clone_env(env, upstream).run("dev", "--yes")
    assert result.returncode == 0, result.stderr
    checkout = env.tmp / "Catalogizer"
    assert _git("rev-parse", "HEAD", cwd=checkout) == first != second
    assert (checkout / "submodules" / "auth" / "auth.go").read_text() == "package auth\n"
    assert "COPY submodules/auth/" in (checkout / "catalog-api" / "Dockerfile").read_text()
    assert not list(env.tmp.glob(".catalogizer-clone.*"))
    # The dev stack's (empty) media folder is created too: Docker refuses a missing bind source.
    assert (env.tmp / "media").is_dir()
    assert [c.split(" | ")[0] for c in env.pulumi_calls()][:2] == ["stack select --create dev", "up --stack dev --yes"]


def test_unknown_commit_leaves_no_checkout(env: Env, upstream: tuple[Path, str, str]) -> None:
    _clone_env(env, upstream).extra["CATALOGIZER_COMMIT"] = "0123456789abcdef0123456789abcdef01234567"
    result = env.run("dev", "--yes")
    assert result.returncode == 1
    assert "has no commit 0123456789abcdef0123456789abcdef01234567" in result.stderr
    assert not (env.tmp / "Catalogizer").exists()
    assert not list(env.tmp.glob(".catalogizer-clone.*"))
    assert env.pulumi_calls() == []


def test_clone_is_asked_for_and_a_no_stops(env: Env, upstream: tuple[Path, str, str]) -> None:
    _clone_env(env, upstream)
    # `script` gives the prompt a terminal; the answer is "n".
    if shutil.which("script", path=SYSTEM_PATH) is None:
        pytest.fail("needs util-linux's `script` to give deploy.sh a terminal (apt-get install bsdutils)")
    env_vars = {"PATH": f"{env.bin}:{SYSTEM_PATH}", "HOME": str(env.home), "FAKE_LOG": str(env.log), **env.extra}
    result = subprocess.run(
        ["script", "-qec", f"bash {env.project / 'deploy.sh'} dev", "/dev/null"],
        env=env_vars,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout
    assert "Clone " in result.stdout and "(with its submodules)? [y/N]" in result.stdout
    assert "no checkout; clone Catalogizer" in result.stdout
    assert not (env.tmp / "Catalogizer").exists()
    assert env.pulumi_calls() == []


def test_a_folder_that_is_no_checkout_is_refused(env: Env) -> None:
    shutil.rmtree(env.tmp / "Catalogizer" / "catalog-api")
    result = with_fake_pulumi(env).run("dev", "--yes")
    assert result.returncode == 1 and "is not a Catalogizer checkout" in result.stderr
    assert env.pulumi_calls() == []


def test_pinned_versions_are_the_ones_the_readme_names() -> None:
    script = (ROOT / "deploy.sh").read_text()
    readme = (ROOT / "README.md").read_text()
    pinned = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in script.splitlines()
        if line.startswith(("PULUMI_VERSION_PINNED=", "CATALOGIZER_COMMIT_DEFAULT="))
    }
    assert pinned["PULUMI_VERSION_PINNED"] == VERSION
    # The CLI deploy.sh installs is the release of the SDK the program runs with.
    sdk_pin = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sdk_pin is not None and sdk_pin.group(1) == VERSION
    assert len(pinned["CATALOGIZER_COMMIT_DEFAULT"]) == 40
    assert pinned["CATALOGIZER_COMMIT_DEFAULT"] in readme
    assert f"Pulumi CLI {VERSION}" in readme


def test_docker_is_checked_before_any_download(env: Env, release: tuple[str, Path, list[str]]) -> None:
    base, folder, requests = release
    _publish(folder, _fake_release())
    env.extra.update({"CATALOGIZER_PULUMI_DOWNLOAD_URL": base, "FAKE_DOCKER": "down"})
    result = env.run("dev", "--yes")
    assert result.returncode == 1 and "the Docker engine does not answer" in result.stderr
    assert requests == []
    assert not env.catalogizer_home.exists()


def test_python_without_venv_is_named_before_pulumi_runs(env: Env) -> None:
    shutil.rmtree(env.project / ".venv")
    _executable(env.bin / "python3", "#!/bin/sh\necho \"No module named 'ensurepip'\" >&2\nexit 1\n")
    result = with_fake_pulumi(env).run("dev", "--yes")
    assert result.returncode == 1
    assert "install its venv module (sudo apt-get install python3-venv)" in result.stderr
    assert env.pulumi_calls() == []
