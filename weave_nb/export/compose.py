"""``weave export --format compose``: the docker provider's image and a Compose file that runs it the same way.

Files (relative to the export folder):

* ``image/``: the build context ``weave deploy --provider docker`` builds
  (its Dockerfile, user and labels; see :mod:`.container_image`).
* ``compose.yaml``: one service built from ``image/`` and tagged with the
  provider's image reference; published on the provider's address
  (127.0.0.1 unless ``--public``/``--host``), port ``${WEAVE_PORT}``
  (default: ``--port`` or 8080); the provider's non-root user, ``init``,
  ``restart: unless-stopped``, memory limit and ``WEAVE_ALLOWED_HOSTS``;
  plus a read-only root filesystem with a tmpfs ``/tmp``, every capability
  dropped, ``no-new-privileges``, a health check on ``/health`` and the
  ownership marks as labels.
* ``.env.example``: the environment variable names with empty values. The
  Compose file reads ``.env`` (``env_file``), which the user creates: the
  export never writes a value.
* ``README.md``: how to run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..providers.docker.image import ImageRecipe
from ..providers.docker.state import publish_host, server_env
from .container_image import ENV_EXAMPLE, HEALTH_PROBE, IMAGE_DIR, PORT, env_example, image_files, recipe_of, settings_of
from .yaml_text import dump

if TYPE_CHECKING:  # pragma: no cover
    from .source import ExportSource

FORMAT = "compose"
PROVIDERS = ("docker",)

COMPOSE_FILE = "compose.yaml"
ENV_FILE = ".env"
PORT_VARIABLE = "WEAVE_PORT"
DEFAULT_HOST_PORT = 8080
HEALTH_INTERVAL = "10s"


def service(src: "ExportSource") -> tuple[dict[str, Any], ImageRecipe]:
    """The Compose service of ``src`` and the docker provider's image recipe it builds.

    Raises:
        ConfigError: a name Docker cannot use, a root user.
    """
    settings = settings_of(src)
    recipe = recipe_of(src, settings)
    labels = dict(recipe.labels)  # the ownership marks and the weave's hash, as on the image
    host = publish_host(src.config)
    host_port = src.config.port or DEFAULT_HOST_PORT
    svc: dict[str, Any] = {
        "build": {"context": IMAGE_DIR},
        "image": recipe.ref,
        "init": True,
        "restart": "unless-stopped",
        "user": settings.user,
        "read_only": True,
        "tmpfs": ["/tmp"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "ports": [f"{host}:${{{PORT_VARIABLE}:-{host_port}}}:{PORT}"],
    }
    names = (*src.env_names, *src.secret_names)
    if names:
        svc["env_file"] = [ENV_FILE]
    allowed = server_env(src.config)
    if allowed:
        svc["environment"] = dict(sorted(allowed.items()))
    if settings.volumes:
        svc["volumes"] = list(settings.volumes)
    if src.config.memory_mb:
        svc["mem_limit"] = f"{src.config.memory_mb}m"
    svc.update({
        "healthcheck": {"test": ["CMD", "python3", "-c", HEALTH_PROBE], "interval": HEALTH_INTERVAL, "timeout": "3s",
                        "retries": 3, "start_period": "30s"},
        "stop_grace_period": "10s",
        "labels": dict(sorted(labels.items())),
    })
    return svc, recipe


def _readme(src: "ExportSource", ref: str, svc: dict[str, Any]) -> bytes:
    port = src.config.port or DEFAULT_HOST_PORT
    host = publish_host(src.config)
    reach = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    env_step = (
        f"1. Create `{ENV_FILE}` next to `{COMPOSE_FILE}`: `cp {ENV_EXAMPLE} {ENV_FILE}`, then fill in the values "
        f"({', '.join(f'`{n}`' for n in (*src.env_names, *src.secret_names))}). The export never writes them; "
        "keep the file out of version control."
        if "env_file" in svc else
        "1. The weave needs no environment variables (add an `env_file` to compose.yaml if you give it some)."
    )
    text = f"""# {src.name}: Docker Compose

Exported by `weave export {src.name} --format compose` from weave-nb: the image
`weave deploy --provider docker` builds (`{IMAGE_DIR}/`: the same Dockerfile, user and labels,
tagged `{ref}`) and a Compose file that runs it on {host}, port {port}.

{env_step}
2. Build and start: `docker compose up -d --build` (or `docker-compose -f {COMPOSE_FILE} up -d --build`).
   Another host port: `{PORT_VARIABLE}=9000 docker compose up -d`.
3. Call it:
   `curl http://{reach}:{port}/health` and
   `curl -X POST -H 'Content-Type: application/json' -d '{{"input": "hello"}}' http://{reach}:{port}/`
4. Stop and remove the containers and the network: `docker compose down`.

The container runs as user {svc['user']}, with a read-only root filesystem (a tmpfs on `/tmp`), no
capabilities and `no-new-privileges`; Docker restarts it unless you stop it and checks `/health`
every {HEALTH_INTERVAL}. Its labels carry weave-nb's ownership marks, so `weave deployments --provider docker`
lists it.
"""
    return text.encode()


def render(src: "ExportSource") -> dict[str, bytes]:
    """The Compose export of ``src``: ``compose.yaml``, ``.env.example``, ``README.md`` and ``image/``.

    Raises:
        ConfigError: a name Docker cannot use, a root user.
    """
    svc, recipe = service(src)
    first = f"Create {ENV_FILE} from {ENV_EXAMPLE} first; then: " if "env_file" in svc else "Run: "
    header = (f"weave-nb deployment {src.name}, exported for Docker Compose (weave export --format compose).\n"
              f"{first}docker compose up -d --build")
    compose = dump(header, {"services": {src.name: svc}})
    files = {COMPOSE_FILE: compose, ENV_EXAMPLE: env_example(src, f"compose.yaml (env_file: {ENV_FILE})"),
             "README.md": _readme(src, recipe.ref, svc)}
    files.update(image_files(recipe, src.artifact.files))
    return dict(sorted(files.items()))
