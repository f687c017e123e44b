"""Gives the API its own least-privileged PostgreSQL role and removes `trust` from pg_hba.conf.

Runs as a pulumi-command hook after PostgreSQL is healthy (and after the pre-update dump and
any restore), before the API containers start. Idempotent, so it also migrates a database
deployed before this hook existed, where the API connected as the superuser and owned nothing:

- the API role is created if missing, and (re)set to LOGIN without SUPERUSER, CREATEDB,
  CREATEROLE, REPLICATION or BYPASSRLS, with the API's password;
- the database, its `public` schema and every table, view, sequence, function and type in it
  become the API role's (ALTER ... OWNER keeps all data; nothing is dropped or copied);
- every `trust` line of pg_hba.conf becomes `scram-sha-256`, checked through
  pg_hba_file_rules before the server reloads it.

Environment (secrets only here, never on argv):
    PG_CONTAINER PGUSER PGDATABASE PGPASSWORD   the superuser, as the other hooks get it
    API_DB_USER API_DB_PASSWORD                 the API's role and its password
    MONITOR_DB_USER MONITOR_DB_PASSWORD         optional: the exporter's role, in pg_monitor only
    DOCKER_HOST                                 optional, the engine the program deploys to
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hooklib import HookError, emit, env, fail, require_running, scrub, use_service_container


def login_role_sql(name: str, env_prefix: str) -> str:
    """psql lines that create the login role named by $<env_prefix>_USER if missing, then set its
    password from $<env_prefix>_PASSWORD and strip every privilege attribute (the same for each role)."""
    return rf"""\getenv {name}_user {env_prefix}_USER
\getenv {name}_password {env_prefix}_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'{name}_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'{name}_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'{name}_user', :'{name}_password') \gexec
"""


# psql reads the role and password from its environment (\getenv, PostgreSQL 15+), so
# neither is on any argv; format(%I, %L) quotes them for the statements it generates.
ROLE_SQL = r"""
\set ON_ERROR_STOP on
""" + login_role_sql("api", "API_DB") + r"""SELECT format('REVOKE %I FROM %I', b.rolname, :'api_user')
  FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
 WHERE r.rolname = :'api_user' \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'api_user') \gexec
SELECT format('ALTER SCHEMA public OWNER TO %I', :'api_user') \gexec
SELECT set_config('catalogizer.api_user', :'api_user', false) \g /dev/null
DO $$
DECLARE
    api text := current_setting('catalogizer.api_user');
    obj record;
BEGIN
    -- Tables, views, materialised and foreign tables; a table's owned sequences follow it.
    FOR obj IN
        SELECT c.oid::regclass AS name FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND c.relowner <> api::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', obj.name, api);
    END LOOP;
    FOR obj IN
        SELECT c.oid::regclass AS name FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S' AND c.relowner <> api::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', obj.name, api);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS name,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END AS kind
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> api::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.kind, obj.name, api);
    END LOOP;
    -- Enums, ranges, domains and free-standing composite types (a table's row type follows it).
    FOR obj IN
        SELECT t.oid::regtype AS name, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind
          FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
         WHERE t.typnamespace = 'public'::regnamespace AND t.typowner <> api::regrole
           AND t.typtype IN ('e', 'r', 'd', 'c') AND (t.typtype <> 'c' OR c.relkind = 'c')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype IN ('e', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.kind, obj.name, api);
    END LOOP;
END
$$;
SELECT 'not-owned=' || count(*) FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.relowner <> current_setting('catalogizer.api_user')::regrole;
"""

# The exporter reads statistics (pg_monitor: pg_stat_*, pg_settings) and no table data.
MONITOR_SQL = r"""
\set ON_ERROR_STOP on
""" + login_role_sql("monitor", "MONITOR_DB") + r"""SELECT format('GRANT pg_monitor TO %I', :'monitor_user') \gexec
"""

HBA_CHECK_SQL = (
    "SELECT count(*) FILTER (WHERE error IS NOT NULL) || ' ' || count(*) FILTER (WHERE auth_method = 'trust') "
    "FROM pg_hba_file_rules"
)
HBA_PATH = '"$PGDATA/pg_hba.conf"'
_TRUST = re.compile(r"(?<![\w-])trust(?![\w-])")


def _exec(container: str, argv: list[str], *, user: str = "", stdin: str | None = None) -> str:
    """docker exec with the secrets copied from our environment by name (`-e NAME`)."""
    options = ["-i"] if stdin is not None else []
    if user:
        options += ["-u", user]
    for name in ("PGPASSWORD", "API_DB_USER", "API_DB_PASSWORD", "MONITOR_DB_USER", "MONITOR_DB_PASSWORD"):
        options += ["-e", name]
    result = subprocess.run(
        ["docker", "exec", *options, "--", container, *argv],
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        detail = scrub((result.stderr or result.stdout).decode(errors="replace")).strip()
        raise HookError(f"`{argv[0]}` in {container} failed (exit {result.returncode}): {detail}")
    return result.stdout.decode(errors="replace")


def _psql(container: str, user: str, database: str, sql: str) -> str:
    # The local socket, as the superuser: with `trust` gone this authenticates with PGPASSWORD.
    argv = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database]
    return _exec(container, argv, stdin=sql)


def without_trust(hba: str) -> tuple[str, int]:
    """pg_hba.conf with every `trust` method replaced by scram-sha-256; comments untouched."""
    lines, replaced = [], 0
    for line in hba.splitlines(keepends=True):
        rule, hash_, comment = line.partition("#")
        new_rule, count = _TRUST.subn("scram-sha-256", rule)
        replaced += count
        lines.append(new_rule + hash_ + comment)
    return "".join(lines), replaced


def remove_trust(container: str, user: str, database: str) -> int:
    current = _exec(container, ["sh", "-c", f"cat {HBA_PATH}"])
    fixed, replaced = without_trust(current)
    if replaced == 0:
        return 0
    write = f"umask 077 && cat > {HBA_PATH}.new && mv {HBA_PATH} {HBA_PATH}.old && mv {HBA_PATH}.new {HBA_PATH}"
    _exec(container, ["sh", "-c", write], user="postgres", stdin=fixed)
    # pg_hba_file_rules parses the file on disk: check it before the server loads it.
    errors, trust = (int(n) for n in _psql(container, user, database, HBA_CHECK_SQL).split())
    if errors or trust:
        _exec(container, ["sh", "-c", f"mv {HBA_PATH}.old {HBA_PATH}"], user="postgres")
        raise HookError(f"the rewritten pg_hba.conf has {errors} error(s) and {trust} trust line(s); kept the old one")
    _exec(container, ["sh", "-c", f"rm -f {HBA_PATH}.old"], user="postgres")
    _psql(container, user, database, "SELECT pg_reload_conf()")
    return replaced


def main() -> None:
    try:
        use_service_container()
        container, user, database = env("PG_CONTAINER"), env("PGUSER"), env("PGDATABASE")
        env("PGPASSWORD")
        api_user = env("API_DB_USER")
        env("API_DB_PASSWORD")
        if api_user == user:
            raise HookError("API_DB_USER must differ from the superuser PGUSER")
        require_running(container, "PostgreSQL")
        answer = _psql(container, user, database, ROLE_SQL)
        not_owned = int(answer.strip().splitlines()[-1].removeprefix("not-owned="))
        if not_owned:
            raise HookError(f"{not_owned} relation(s) in schema public are still not owned by {api_user}")
        if os.environ.get("MONITOR_DB_USER"):
            env("MONITOR_DB_PASSWORD")
            _psql(container, user, database, MONITOR_SQL)
        replaced = remove_trust(container, user, database)
    except (HookError, subprocess.TimeoutExpired, ValueError) as exc:
        fail(f"database roles: {exc}")
    emit({"apiRole": api_user, "trustLinesReplaced": replaced})


if __name__ == "__main__":
    main()
