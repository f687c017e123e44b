"""Two containers whose health check never passes, with waits of different lengths (issue 17).

Config (namespace `race`): `prefix` (unique container names), `image`, `shortWait`, `longWait`
(seconds), and `replaceOnInitError` ("true": both carry replace_on_changes=["*"], which covers
"#initerror", and delete_before_replace=True as fixed-name containers must).
"""

import pulumi
import pulumi_docker as docker

config = pulumi.Config("race")
prefix = config.require("prefix")
replace_on_init_error = config.get_bool("replaceOnInitError") or False

# The long wait registers first: the SDK's wait_for_rpcs awaits the last RPC first, so it sees the
# short wait fail while the long one is still running: the race of issue 17, every time.
for role, wait in (("long", config.require_int("longWait")), ("short", config.require_int("shortWait"))):
    docker.Container(
        f"{role}-wait",
        name=f"{prefix}-{role}",
        image=config.require("image"),
        command=["sleep", "600"],
        healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", "false"], interval="1s", retries=1),
        wait=True,
        wait_timeout=wait,
        destroy_grace_seconds=1,
        labels=[docker.ContainerLabelArgs(label="catalogizer.test.race", value=prefix)],
        opts=pulumi.ResourceOptions(
            replace_on_changes=["*"] if replace_on_init_error else None,
            delete_before_replace=True if replace_on_init_error else None,
        ),
    )
