"""The production deployment (docker/) against the local path.

Nothing in docker/ is built or started here. These tests read its files and
compare them with config/platform.ini, test.ini, requirements.txt and
scripts/ckan.sh, so that a plugin, setting or job queue changed on one side
and not on the other fails here rather than in a deployment. They need no
service and no CKAN fixture.
"""
from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT_SCRIPT = DOCKER / "docker-entrypoint.d" / "01_lgdp.sh"
PG_INIT_DIR = DOCKER / "postgresql" / "docker-entrypoint-initdb.d"
SOLR_INIT_DIR = DOCKER / "solr" / "docker-entrypoint-initdb.d"

SERVICES = ("ckan", "worker", "scheduler", "db", "solr", "redis")
# The containers of the CKAN image: the web, the worker and the scheduler.
CKAN_IMAGE_SERVICES = ("ckan", "worker", "scheduler")
# Services with a healthcheck. The scheduler has none of its own: its last
# tick is reported by `ckan lgdp status`, and a scheduler process that dies
# stops its container, which the restart policy starts again.
HEALTHCHECKED = ("ckan", "worker", "db", "solr", "redis")
# The solrcloud profile: the cluster's data services, and its one-shot set-up.
SOLRCLOUD = ("zookeeper", "solr-1", "solr-2")
SOLRCLOUD_INIT = "solrcloud-init"
SOLRCLOUD_INIT_SCRIPT = DOCKER / "solrcloud" / "init.sh"

# The ckan/ckan-base images list ckanext-envvars last in CKAN__PLUGINS
# ("image_view text_view datatables_view datastore envvars"): IConfigurer
# runs plugins last-first, so the variables reach the configuration before
# any other plugin reads it. The local platform does not use it.
ENVVARS_PLUGIN = "envvars"

# Options of config/platform.ini [app:main] that production sets another way
# than through a CKAN__... variable of docker/, each with the reason.
# None at present: every option is carried by docker/Dockerfile.
SET_DIFFERENTLY_IN_PRODUCTION: dict[str, str] = {}

# The base image's application folder (APP_DIR of ckan/ckan-base), from which
# its start_ckan.sh runs prerun.py.
BASE_IMAGE_APP_DIR = "/srv/app"


# ---------------------------------------------------------------- readers


def read_app_main(path: Path) -> dict[str, str]:
    """[app:main] of an ini file, as written (no interpolation, case kept)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep SECRET_KEY, WTF_CSRF_ENABLED, ...
    with path.open(encoding="utf-8") as f:
        parser.read_file(f)
    defaults = parser.defaults()
    return {k: v for k, v in parser.items("app:main", raw=True) if k not in defaults}


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of a compose .env file; comments and blank lines skipped."""
    env: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", text)
        assert m, f"{path.name}:{n}: not a NAME=value line: {line!r}"
        name, value = m.groups()
        assert name not in env, f"{path.name}:{n}: {name} is defined twice"
        assert not value.startswith(("'", '"')), f"{path.name}:{n}: {name}: no quotes"
        assert "$" not in value, f"{path.name}:{n}: {name}: '$' would be interpolated"
        env[name] = value
    return env


def read_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comment
    lines dropped, as Docker reads them."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = (pending + stripped).strip()
        pending = ""
        word, _, args = logical.partition(" ")
        instructions.append((word.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions:
        if word != "ENV":
            continue
        for token in shlex.split(args):
            name, sep, value = token.partition("=")
            assert sep, f"ENV {token!r}: use the NAME=value form"
            env[name] = value
    return env


def envvars_to_option(name: str) -> str:
    """The option ckanext-envvars sets for an environment variable (its
    _envvar_to_ini, for keys that CKAN does not declare in upper case)."""
    if name.startswith("CKAN___"):
        name = name[len("CKAN___"):]
    return name.lower().replace("__", ".")


def option_to_envvar(option: str) -> str:
    """The variable that carries OPTION under the ckanext-envvars naming:
    upper case, dots as double underscores; options outside the ckan. and
    ckanext. namespaces take the CKAN___ prefix (envvars reads only
    variables that start with CKAN)."""
    name = option.upper().replace(".", "__")
    if option.startswith(("ckan.", "ckanext.")):
        return name
    return "CKAN___" + name


def is_envvars_variable(name: str) -> bool:
    return name.startswith(("CKAN__", "CKANEXT__"))


_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def compose_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from compose_strings(key)
            yield from compose_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from compose_strings(item)


def compose_variables(node) -> set[str]:
    names = set()
    for text in compose_strings(node):
        for m in _COMPOSE_VAR.finditer(text):
            if not m.group("escaped"):
                names.add(m.group("braced") or m.group("bare"))
    return names


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${...} interpolation of TEXT with the variables ENV."""

    def one(m: re.Match) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return arg
            return value
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        assert value is not None, f"${{{name}}} is not defined"
        return value

    return _COMPOSE_VAR.sub(one, text)


def command_args(command) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    return [str(a) for a in command]


WORKER_COMMANDS = ("lgdp worker", "jobs worker")


def worker_queues(args: list[str]) -> list[str]:
    """The queues of a `ckan [-c INI] lgdp worker [OPTIONS] QUEUE...` command
    (or CKAN's own `jobs worker`)."""
    i = args.index("worker")
    assert args[i - 1] in ("lgdp", "jobs"), args
    queues = []
    skip = False
    for arg in args[i + 1:]:
        if arg.startswith((">", "&", "|", "2>", "<")):
            break
        if skip:
            skip = False
        elif arg == "--max-jobs":
            skip = True
        elif not arg.startswith("-"):
            queues.append(arg)
    return queues


def local_worker_queues() -> list[str]:
    """The queues of the worker that platform.sh starts (scripts/ckan.sh)."""
    found = []
    for script in (ROOT / "platform.sh", *sorted((ROOT / "scripts").glob("*.sh"))):
        for line in script.read_text(encoding="utf-8").splitlines():
            if any(c in line for c in WORKER_COMMANDS) and not line.lstrip().startswith("#"):
                found.append(worker_queues(shlex.split(line.rstrip().rstrip("\\"))))
    assert found, "platform.sh starts no worker (`ckan lgdp worker`)"
    assert all(q == found[0] for q in found), f"local workers differ: {found}"
    return found[0]


def requirements_ckan_version() -> str:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    m = re.search(r"^ckan(?:\[[^\]]*\])?==([0-9][0-9.]*)\s*$", text, re.MULTILINE)
    assert m, "requirements.txt pins no ckan version"
    return m.group(1)


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def port_mappings(service: dict, env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of a service's short-form ports."""
    result = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"use the short port syntax: {entry!r}"
        text = interpolate(entry, env).split("/")[0]
        parts = text.rsplit(":", 2)
        if len(parts) == 2:
            parts = ["0.0.0.0", *parts]
        assert len(parts) == 3, entry
        result.append((parts[0], parts[1], parts[2]))
    return result


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return read_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def image_env(instructions) -> dict[str, str]:
    return dockerfile_env(instructions)


@pytest.fixture(scope="module")
def runtime_env(image_env, env_example) -> dict[str, str]:
    """The environment of the ckan and worker containers: the image's ENV,
    overridden by the .env file (env_file)."""
    return {**image_env, **env_example}


@pytest.fixture(scope="module")
def platform_ini() -> dict[str, str]:
    return read_app_main(ROOT / "config" / "platform.ini")


@pytest.fixture(scope="module")
def test_ini() -> dict[str, str]:
    return read_app_main(ROOT / "test.ini")


# ---------------------------------------------------------------- compose


def test_compose_has_the_platform_services(services):
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"docker-compose.yml lacks the services {missing}"


def test_every_compose_variable_is_in_env_example(compose, env_example):
    used = compose_variables(compose)
    assert used, "docker-compose.yml uses no ${VAR}: .env.example would not be read"
    missing = sorted(used - set(env_example))
    assert not missing, f"in docker-compose.yml, not in .env.example: {missing}"


def test_ckan_and_worker_read_the_env_file(services):
    for name in CKAN_IMAGE_SERVICES:
        env_files = services[name].get("env_file")
        env_files = [env_files] if isinstance(env_files, str) else env_files or []
        paths = [e["path"] if isinstance(e, dict) else e for e in env_files]
        assert ".env" in paths, f"{name} does not read .env (the copy of .env.example)"


def test_only_ckan_publishes_port_5000_on_loopback(services, env_example):
    ckan_ports = port_mappings(services["ckan"], env_example)
    assert len(ckan_ports) == 1, ckan_ports
    host_ip, host_port, container_port = ckan_ports[0]
    assert container_port == "5000"
    assert host_ip == "127.0.0.1", "CKAN must be bound to loopback by default"
    assert host_port.split("-")[0] == "5000"
    # Everything else stays inside Docker, except opt-in profiles (nginx).
    for name, service in services.items():
        if name != "ckan" and not service.get("profiles"):
            assert not service.get("ports"), f"{name} publishes {service['ports']}"
            assert "network_mode" not in service, f"{name} uses network_mode"


def test_images_are_built_from_the_files_here(services):
    # docker/Dockerfile copies the repository: its context is the repository
    # root, and the ignore file next to it is the one BuildKit reads.
    build = services["ckan"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == ROOT, f"the ckan image is built from {context}, not {ROOT}"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert (DOCKER / (DOCKERFILE.name + ".dockerignore")).is_file()
    db_build = services["db"]["build"]
    if isinstance(db_build, dict):
        db_build = db_build["context"]
    db_context = DOCKER / db_build
    db_dockerfile = (db_context / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM postgres:\d+", db_dockerfile, re.MULTILINE)
    assert "docker-entrypoint-initdb.d" in db_dockerfile
    assert db_context.resolve() == PG_INIT_DIR.parent.resolve()


def test_healthchecks_and_start_order(services):
    for name in HEALTHCHECKED:
        check = services[name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name}: healthcheck disabled"
    ckan_health = " ".join(command_args(services["ckan"]["healthcheck"]["test"]))
    assert "localhost:5000/" in ckan_health
    order = {"ckan": ("db", "solr", "redis"), "worker": ("ckan", "redis"), "scheduler": ("ckan", "db", "redis")}
    for name, needs in order.items():
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dep in needs:
            condition = depends.get(dep, {}).get("condition")
            assert condition == "service_healthy", f"{name} does not wait for {dep}"


def test_worker_is_the_ckan_image_on_the_local_queues(services, runtime_env):
    ckan, worker = services["ckan"], services["worker"]
    assert worker.get("image") == ckan.get("image") and worker.get("image")
    assert worker.get("build") == ckan.get("build")
    args = command_args(worker["command"])
    assert args[0] == "ckan" and "lgdp" in args and "worker" in args, args
    queues = worker_queues(args)
    assert queues == local_worker_queues(), (
        "the worker container must listen on the queues of the local worker "
        "(scripts/ckan.sh)"
    )
    # The queue that validation jobs go to (ckanext-lgdp's declared default,
    # unless the deployment sets another).
    declaration = ROOT / "ckanext" / "lgdp" / "config_declaration.yaml"
    if declaration.exists():
        groups = yaml.safe_load(declaration.read_text(encoding="utf-8"))["groups"]
        options = {o["key"]: o for group in groups for o in group.get("options", [])}
        if "ckanext.lgdp.validation_queue" in options:
            queue = runtime_env.get(
                option_to_envvar("ckanext.lgdp.validation_queue"),
                options["ckanext.lgdp.validation_queue"].get("default"),
            )
            assert queue in queues, f"no worker listens on the queue {queue!r}"


def test_every_service_is_restarted_when_it_dies(services):
    # the one one-shot job, started again only if it failed
    assert services[SOLRCLOUD_INIT].get("restart") == "on-failure"
    for name, service in services.items():
        if name == SOLRCLOUD_INIT:
            continue
        assert service.get("restart") in ("unless-stopped", "always"), (
            f"{name}: restart is {service.get('restart')!r}; a container whose process dies "
            "must be started again"
        )


def test_scheduler_is_the_ckan_image_running_the_scheduler(services):
    ckan, scheduler = services["ckan"], services["scheduler"]
    assert scheduler.get("image") == ckan.get("image") and scheduler.get("build") == ckan.get("build")
    assert command_args(scheduler["command"]) == ["ckan", "lgdp", "scheduler"]
    # the local platform's supervisord runs the same command (scripts/supervisor.sh)
    local = (ROOT / "scripts" / "supervisor.sh").read_text(encoding="utf-8")
    assert re.search(r"^command=\S*/ckan -c \S+ lgdp scheduler$", local, re.MULTILINE)
    assert "scheduler" not in (services["worker"].get("depends_on") or {}), "the worker needs no scheduler"


def _seconds(duration: str) -> int:
    """A compose duration such as 2m or 1m30s, in seconds."""
    parts = re.findall(r"(\d+)(h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def test_a_stopped_worker_has_the_same_grace_as_locally(services):
    grace = _seconds(services["worker"]["stop_grace_period"])
    local = (ROOT / "scripts" / "supervisor.sh").read_text(encoding="utf-8")
    m = re.search(r"whole_number LGDP_WORKER_GRACE (\d+) ", local)
    assert m, "scripts/supervisor.sh sets no default LGDP_WORKER_GRACE"
    assert int(m.group(1)) == grace, "the local worker and the worker container finish their job in different times"


def test_the_web_serves_without_the_debugger(services, instructions, image_env, env_example, compose):
    # the base image's uWSGI serves CKAN: no command or entry point of ours
    assert "command" not in services["ckan"] and "entrypoint" not in services["ckan"]
    assert not [w for w, _ in instructions if w in ("CMD", "ENTRYPOINT")]
    # debug = false written into ckan.ini, and no variable turns it on
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"ckan config-tool \S+ -s DEFAULT \"debug = false\"", runs), runs
    for env in (image_env, env_example):
        for name in ("CKAN___DEBUG", "CKAN__DEBUG", "DEBUG"):
            assert name not in env, f"{name} is set"
    for name, service in services.items():
        environment = service.get("environment") or {}
        names = environment if isinstance(environment, dict) else [e.partition("=")[0] for e in environment]
        assert not {"CKAN___DEBUG", "CKAN__DEBUG"} & set(names), name


def test_storage_volume_is_shared_by_ckan_and_worker(compose, services, env_example):
    storage = env_example["CKAN_STORAGE_PATH"]
    declared = set(compose.get("volumes") or {})
    sources = {}
    for name in CKAN_IMAGE_SERVICES:
        mounts = {}
        for volume in services[name].get("volumes", []):
            source, _, rest = volume.partition(":")
            mounts[rest.split(":")[0]] = source
        assert storage in mounts, f"{name} does not mount CKAN_STORAGE_PATH ({storage})"
        sources[name] = mounts[storage]
        assert sources[name] in declared, f"{name}: {sources[name]} is no named volume"
    assert sources["ckan"] == sources["worker"] == sources["scheduler"]
    for name, target in (("db", "/var/lib/postgresql/data"), ("solr", "/var/solr")):
        mounts = {}
        for volume in services[name].get("volumes", []):
            source, target_, *_ = volume.split(":")
            mounts[target_] = source
        assert mounts.get(target) in declared, f"{name}: no named volume on {target}"


def test_solr_is_ckans_solr_9_image_for_this_ckan(services, env_example, instructions):
    image = interpolate(services["solr"]["image"], env_example)
    m = re.fullmatch(r"ckan/ckan-solr:(\d+\.\d+)-solr9(?:\.\d+)?", image)
    assert m, f"solr must run a Solr 9 image of ckan/ckan-solr, not {image!r}"
    assert m.group(1) == major_minor(requirements_ckan_version())
    base = [args for word, args in instructions if word == "FROM"][-1]
    assert base.startswith(f"ckan/ckan-base:{m.group(1)}."), (image, base)
    url = urlsplit(env_example["CKAN_SOLR_URL"])
    assert (url.hostname, url.port) == ("solr", 8983)
    assert url.path.rstrip("/") == "/solr/ckan"


def test_service_urls_point_at_the_compose_services(services, env_example):
    env = env_example
    owner = (env["CKAN_DB_USER"], env["CKAN_DB_PASSWORD"])
    reader = (env["DATASTORE_READONLY_USER"], env["DATASTORE_READONLY_PASSWORD"])
    expected = {
        "CKAN_SQLALCHEMY_URL": (*owner, env["CKAN_DB"]),
        "CKAN_DATASTORE_WRITE_URL": (*owner, env["DATASTORE_DB"]),
        "CKAN_DATASTORE_READ_URL": (*reader, env["DATASTORE_DB"]),
    }
    for name, (user, password, database) in expected.items():
        url = urlsplit(env[name])
        assert url.scheme in ("postgresql", "postgres"), name
        assert url.hostname in services, f"{name}: {url.hostname} is not a service"
        assert url.hostname == "db", name
        found = (url.username, url.password, url.path.lstrip("/"))
        assert found == (user, password, database), f"{name}: not the db's user/db"
    assert env["CKAN_DB"] != env["DATASTORE_DB"]
    assert env["CKAN_DB_USER"] != env["DATASTORE_READONLY_USER"]
    assert urlsplit(env["CKAN_REDIS_URL"]).hostname == "redis"
    # The variables the image's prerun.py and CKAN itself read.
    for name in (
        "CKAN_SITE_URL", "CKAN_SITE_ID", "CKAN_STORAGE_PATH",
        "CKAN_SYSADMIN_NAME", "CKAN_SYSADMIN_PASSWORD", "CKAN_SYSADMIN_EMAIL",
    ):
        assert env.get(name), f".env.example does not set {name}"


def test_secrets_are_shared_settings(env_example):
    # Several web containers must sign and check sessions, CSRF tokens and API
    # tokens alike, so the secrets come from .env, not from each container.
    for option in (
        "SECRET_KEY",
        "WTF_CSRF_SECRET_KEY",
        "api_token.jwt.encode.secret",
        "api_token.jwt.decode.secret",
    ):
        name = "CKAN___" + option.upper().replace(".", "__")
        assert env_example.get(name), f".env.example does not set {name}"
    assert (
        env_example["CKAN___API_TOKEN__JWT__ENCODE__SECRET"]
        == env_example["CKAN___API_TOKEN__JWT__DECODE__SECRET"]
    )


def test_db_service_has_what_its_init_script_reads(services):
    environment = services["db"].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(e.partition("=")[::2] for e in environment)
    scripts = sorted(PG_INIT_DIR.glob("*.sh"))
    assert scripts, "no init script in docker/postgresql/docker-entrypoint-initdb.d"
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
        missing = sorted(used - set(environment))
        assert not missing, f"{script.name} reads {missing}, not given to db"
        for needed in ("CREATE DATABASE", "CREATE ROLE"):
            assert needed in text
    for var in ("CKAN_DB", "DATASTORE_DB", "DATASTORE_READONLY_USER"):
        assert var in environment, f"the db service is not given {var}"


def service_networks(service: dict) -> list[str]:
    networks = service.get("networks") or ["default"]
    return list(networks) if isinstance(networks, (list, dict)) else [networks]


def test_data_services_sit_on_an_internal_network_with_only_ckan_and_worker(compose, services):
    declared = compose.get("networks") or {}
    internal = {name for name, spec in declared.items() if (spec or {}).get("internal") is True}
    assert internal, "no internal network (internal: true) for PostgreSQL, Solr and Redis"
    members = {name: set(service_networks(service)) for name, service in services.items()}
    for name in ("db", "solr", "redis"):
        assert members[name] and members[name] <= internal, f"{name} is on {members[name]}: a way out"
    for name in (*SOLRCLOUD, SOLRCLOUD_INIT):
        assert members[name] and members[name] <= internal, f"{name} is on {members[name]}: a way out"
    allowed = {*SERVICES, *SOLRCLOUD, SOLRCLOUD_INIT}
    for network in internal:
        on_it = {name for name, nets in members.items() if network in nets}
        assert on_it <= allowed, f"{sorted(on_it - allowed)} reach the data services ({network})"
    for name in CKAN_IMAGE_SERVICES:
        assert members[name] & internal, f"{name} cannot reach the data services"
        # the worker fetches councils' files and sends webhooks; the web
        # checks the addresses it is given and sends mail
        assert members[name] - internal, f"{name} has no way out"
    if "nginx" in services:
        assert not members["nginx"] & internal, "nginx must not reach the data services"
        assert members["nginx"] & members["ckan"], "nginx shares no network with ckan"


def solr_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(e.partition("=")[::2] for e in environment)
    return environment


def test_solr_requires_the_credentials_ckan_signs_in_with(services, env_example):
    solr = services["solr"]
    user, password = env_example.get("CKAN_SOLR_USER"), env_example.get("CKAN_SOLR_PASSWORD")
    assert user and password, ".env.example sets no CKAN_SOLR_USER / CKAN_SOLR_PASSWORD"
    # CKAN itself turns them into user:password@ of solr_url; in the URL
    # variable they would stop the image's prerun.py from reaching Solr
    url = urlsplit(env_example["CKAN_SOLR_URL"])
    assert url.username is None and url.password is None, "CKAN_SOLR_URL must carry no credentials"
    environment = solr_environment(solr)
    assert interpolate(environment.get("LGDP_SOLR_USER", ""), env_example) == user
    assert interpolate(environment.get("LGDP_SOLR_PASSWORD", ""), env_example) == password
    assert "SOLR_USER" not in environment, "the solr image unsets SOLR_USER (its system user)"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in solr.get("volumes", [])}
    assert (DOCKER / mounts["/docker-entrypoint-initdb.d"]).resolve() == SOLR_INIT_DIR.resolve()
    health = " ".join(command_args(solr["healthcheck"]["test"]))
    assert "$$LGDP_SOLR_USER" in health and "$$LGDP_SOLR_PASSWORD" in health, "the healthcheck would be refused"


def solr_hash(password: str, salt: str) -> str:
    """What Solr's Sha256AuthenticationProvider compares a password with."""
    import base64
    import hashlib

    inner = hashlib.sha256(base64.b64decode(salt) + password.encode("utf-8")).digest()
    return base64.b64encode(hashlib.sha256(inner).digest()).decode("ascii")


def test_the_solr_init_script_writes_basic_authentication(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    [script] = sorted(SOLR_INIT_DIR.glob("*.sh"))

    def run(**env: str) -> subprocess.CompletedProcess:
        # as the solr image's run-initdb does: sourced, under set -e
        return subprocess.run([bash, "-c", f'set -e; . "{script}"; echo done'], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "SOLR_HOME": str(tmp_path), **env})

    password = "Zx9-s3cr:et@p/q%"
    result = run(LGDP_SOLR_USER="ckan", LGDP_SOLR_PASSWORD=password)
    assert result.returncode == 0 and result.stdout.endswith("done\n"), result.stderr
    security = json.loads((tmp_path / "security.json").read_text(encoding="utf-8"))
    authentication, authorization = security["authentication"], security["authorization"]
    assert authentication["class"] == "solr.BasicAuthPlugin"
    [(user, credential)] = authentication["credentials"].items()
    hashed, salt = credential.split(" ")
    assert user == "ckan" and hashed == solr_hash(password, salt) != solr_hash("wrong", salt)
    assert authorization["class"] == "solr.RuleBasedAuthorizationPlugin"
    assert authorization["user-role"] == {"ckan": "admin"}
    *open_, last = authorization["permissions"]
    assert last == {"name": "all", "role": "admin"}, "every other request needs the user"
    # only the schema's name, which prerun.py reads without credentials
    assert open_ == [{"name": "ckan-schema-name", "path": "/schema/name", "method": ["GET"], "role": None}]
    assert (tmp_path / "security.json").stat().st_mode & 0o077 == 0

    (tmp_path / "security.json").unlink()
    for env in ({}, {"LGDP_SOLR_USER": "ckan"}, {"LGDP_SOLR_USER": 'ck"an', "LGDP_SOLR_PASSWORD": "x"}):
        result = run(**env)
        assert result.returncode != 0 and "done" not in result.stdout, env
        assert not (tmp_path / "security.json").exists()


def test_the_solrcloud_profile_is_two_nodes_a_zookeeper_and_the_collection_set_up(services, env_example):
    for name in (*SOLRCLOUD, SOLRCLOUD_INIT):
        assert services[name].get("profiles") == ["solrcloud"], f"{name} is not in the solrcloud profile only"
        assert not services[name].get("ports"), f"{name} publishes a port"
    nodes = [services[name] for name in ("solr-1", "solr-2")]
    hosts = []
    for node in nodes:
        # CKAN's Solr image, as the single solr: the same Solr and configset
        assert node["image"] == services["solr"]["image"]
        environment = solr_environment(node)
        assert environment["ZK_HOST"] == "zookeeper:2181"
        hosts.append(environment["SOLR_HOST"])
        assert interpolate(environment["LGDP_SOLR_USER"], env_example) == env_example["CKAN_SOLR_USER"]
        assert node["depends_on"]["zookeeper"]["condition"] == "service_healthy"
        assert "$$LGDP_SOLR_USER" in " ".join(command_args(node["healthcheck"]["test"]))
    assert sorted(hosts) == ["solr-1", "solr-2"]
    assert len({tuple(n["volumes"]) for n in nodes}) == 2, "the nodes share a volume"
    init = services[SOLRCLOUD_INIT]
    environment = solr_environment(init)
    assert environment["LGDP_SOLR_NODES"].split() == [f"{h}:8983" for h in hosts]
    mounts = {v.split(":")[1]: (DOCKER / v.split(":")[0]).resolve() for v in init["volumes"]}
    assert mounts["/lgdp/init.sh"] == SOLRCLOUD_INIT_SCRIPT.resolve()
    [security] = sorted(SOLR_INIT_DIR.glob("*.sh"))
    assert mounts["/lgdp/10_lgdp_security.sh"] == security.resolve(), "the cluster's password rule differs"
    # the web, the worker and the scheduler wait for it only with the profile on
    for name in CKAN_IMAGE_SERVICES:
        needs = services[name]["depends_on"][SOLRCLOUD_INIT]
        assert needs == {"condition": "service_completed_successfully", "required": False}, name
    # CKAN's schema is changed in one field only, the one SolrCloud needs
    text = SOLRCLOUD_INIT_SCRIPT.read_text(encoding="utf-8")
    assert '<field name="_version_" type="plong" indexed="false" stored="false" docValues="true"/>' in text
    local = (ROOT / "scripts" / "solrcloud.sh").read_text(encoding="utf-8")
    assert '<field name="_version_" type="plong" indexed="false" stored="false" docValues="true"/>' in local


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_builds_on_a_pinned_ckan_2_11_base(instructions):
    froms = [args for word, args in instructions if word == "FROM"]
    # build stages first (named, e.g. the npm assets), the CKAN image last
    assert all(re.search(r"\sAS\s+\S+$", f, re.IGNORECASE) for f in froms[:-1]), froms
    base = froms[-1].split()[0]
    m = re.fullmatch(r"ckan/ckan-base:(\d+\.\d+)\.(\d+)(?:-py3\.\d+)?", base)
    assert m, f"the last FROM must pin a ckan/ckan-base patch release, not {froms[-1]!r}"
    assert m.group(1) == major_minor(requirements_ckan_version()) == "2.11"


def dockerfile_stages(instructions) -> dict[str, list[tuple[str, str]]]:
    """The instructions of each build stage, by stage name (the final,
    unnamed stage as "")."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, args in instructions:
        if word == "FROM":
            m = re.search(r"\sAS\s+(\S+)$", args, re.IGNORECASE)
            current = stages.setdefault(m.group(1) if m else "", [])
        current.append((word, args))
    return stages


ASSETS = "ckanext/lgdp/assets"


def test_dockerfile_builds_the_npm_assets(instructions):
    # the assets' npm packages as locked, installed with `npm ci` in a Node
    # build stage, and their node_modules copied where webassets.yml reads them
    stages = dockerfile_stages(instructions)
    node = {name: body for name, body in stages.items() if body[0][1].startswith("node:")}
    assert node, "no Node build stage (FROM node:... AS ...) for the npm assets"
    [(name, body)] = node.items()
    image = body[0][1].split()[0]
    assert re.fullmatch(r"node:20(?:[.-]\S*)?", image), f"the assets stage must build on node:20, not {image!r}"
    copies = [args for word, args in body if word == "COPY"]
    assert any(f"{ASSETS}/package.json" in c and f"{ASSETS}/package-lock.json" in c for c in copies), copies
    runs = [args for word, args in body if word == "RUN"]
    assert any(re.search(r"\bnpm\s+ci\b", r) for r in runs), f"the {name} stage does not run `npm ci`: {runs}"
    assert not any(re.search(r"\bnpm\s+(install|i)\b", r) for r in runs), "npm install would not follow the lock"
    final = stages[""]
    wanted = rf"--from={re.escape(name)}\s.*node_modules\s+\$\{{?SRC_DIR\}}?/ckanext-lgdp/{ASSETS}/node_modules/?$"
    assert any(re.search(wanted, args) for word, args in final if word == "COPY"), (
        f"node_modules of the {name} stage is not copied to {ASSETS}/node_modules of the CKAN image"
    )


def test_the_served_npm_files_come_from_locked_dependencies():
    assets = ROOT / ASSETS
    package = json.loads((assets / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((assets / "package-lock.json").read_text(encoding="utf-8"))
    dependencies = package.get("dependencies") or {}
    assert package.get("private") is True
    assert lock["packages"][""].get("dependencies") == dependencies, "package-lock.json is stale: run npm install"
    bundles = yaml.safe_load((assets / "webassets.yml").read_text(encoding="utf-8"))
    served = [item for bundle in bundles.values() for item in bundle.get("contents", [])
              if item.startswith("node_modules/")]
    assert served, "no bundle of webassets.yml serves an npm package"
    for item in served:
        name = item.split("/")[1]
        assert name in dependencies, f"{item}: {name} is not a dependency in package.json"
        assert re.fullmatch(r"\d+\.\d+\.\d+", dependencies[name]), f"{name} must be pinned exactly"
        assert lock["packages"][f"node_modules/{name}"]["version"] == dependencies[name]


def test_dockerfile_installs_this_repository_editable(instructions):
    copies = [args for word, args in instructions if word == "COPY"]
    repo_copies = [c for c in copies if re.search(r"(^|\s)\.\s+\$\{?SRC_DIR\}?/", c)]
    assert repo_copies, "the repository is not copied into the image's src folder"
    runs = " ".join(args for word, args in instructions if word == "RUN")
    pip = [r for r in re.split(r"&&|;", runs) if re.search(r"\bpip3?\s+install\b", r)]
    assert any(re.search(r"-r\s+requirements\.txt\b", r) for r in pip), pip
    editable = [r for r in pip if re.search(r"(^|\s)-e\s+\.(\s|$)", r)]
    assert editable, "no editable install (pip install -e .) of the repository"
    assert "dev-requirements" not in runs
    # start_ckan.sh runs prerun.py from the app folder.
    workdirs = [args for word, args in instructions if word == "WORKDIR"]
    if workdirs:
        assert workdirs[-1] in ("${APP_DIR}", "$APP_DIR", BASE_IMAGE_APP_DIR)
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1] == "ckan", "the image must end as the ckan user"
    entrypoint = r"docker/docker-entrypoint\.d/\S*\s+/docker-entrypoint\.d/?$"
    assert any(re.search(entrypoint, c) for c in copies), "init scripts not copied"


def test_scheming_schemas_are_in_the_package(platform_ini):
    package_dir = ROOT / "ckanext" / "lgdp"
    for option in ("scheming.dataset_schemas", "scheming.organization_schemas"):
        for ref in platform_ini[option].split():
            module, _, rel = ref.partition(":")
            assert module == "ckanext.lgdp", ref
            assert (package_dir / rel).resolve().is_file(), f"{ref} does not resolve"


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignore = DOCKER / "Dockerfile.dockerignore"
    patterns = {
        line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".state", ".git", "docker/.env", "**/node_modules"):
        assert needed in patterns, f"{ignore.name} does not exclude {needed}"
    for kept in ("ckanext", "requirements.txt", "setup.py", "MANIFEST.in"):
        assert not any(p.split("/")[0] == kept for p in patterns), f"{kept} is excluded"


def test_plugins_are_those_of_platform_and_test_ini(
    image_env, env_example, platform_ini, test_ini
):
    local = platform_ini["ckan.plugins"].split()
    assert test_ini["ckan.plugins"].split() == local
    assert ENVVARS_PLUGIN not in local
    expected = local + [ENVVARS_PLUGIN]
    assert image_env.get("CKAN__PLUGINS", "").split() == expected, (
        "CKAN__PLUGINS of docker/Dockerfile must be the ckan.plugins of "
        "config/platform.ini, in the same order, followed by envvars"
    )
    if "CKAN__PLUGINS" in env_example:
        assert env_example["CKAN__PLUGINS"].split() == expected


def test_every_platform_option_is_set_in_docker(platform_ini, runtime_env):
    for option in SET_DIFFERENTLY_IN_PRODUCTION:
        assert option in platform_ini, f"{option} is no longer in config/platform.ini"
    problems = []
    for option, value in platform_ini.items():
        name = option_to_envvar(option)
        assert envvars_to_option(name) == option, f"{name} would not set {option}"
        if option in SET_DIFFERENTLY_IN_PRODUCTION:
            if name in runtime_env:
                problems.append(f"{option} is set differently, yet {name} is set")
            continue
        if name not in runtime_env:
            problems.append(f"{option}: no {name} in docker/Dockerfile or .env.example")
            continue
        expected = value.split()
        if option == "ckan.plugins":
            expected = expected + [ENVVARS_PLUGIN]
        if runtime_env[name].split() != expected:
            problems.append(
                f"{option}: {name}={runtime_env[name]!r}, platform.ini has {value!r}"
            )
    assert not problems, "\n".join(problems)


def test_image_settings_all_come_from_platform_ini(image_env, platform_ini):
    # The reverse: no setting in the image that the local platform lacks.
    stray = [
        name for name in image_env
        if is_envvars_variable(name) and envvars_to_option(name) not in platform_ini
    ]
    assert not stray, f"in docker/Dockerfile, not in config/platform.ini: {stray}"


def test_max_upload_fits_through_nginx(services, platform_ini):
    if "nginx" not in services:
        pytest.skip("no nginx service")
    conf = (DOCKER / "nginx" / "default.conf").read_text(encoding="utf-8")
    m = re.search(r"client_max_body_size\s+(\d+)([mMkK]?)\s*;", conf)
    assert m, "nginx/default.conf sets no client_max_body_size"
    size_mb = int(m.group(1)) / (1024 if m.group(2).lower() == "k" else 1)
    assert size_mb > int(platform_ini["ckan.max_resource_size"])
    mounts = " ".join(services["nginx"].get("volumes", []))
    assert "./nginx/default.conf:" in mounts


# ---------------------------------------------------------------- scripts


def test_entrypoint_script_migrates_and_sets_datastore_permissions():
    text = ENTRYPOINT_SCRIPT.read_text(encoding="utf-8")
    lines = text.splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert re.search(r"\bckan\b[^\n|]*\bdb upgrade\b", code)
    assert re.search(r"\bckan\b[^\n|]*\bdatastore set-permissions\b", code)
    assert re.search(r"\|\s*psql\b", code), "set-permissions is not piped into psql"
    assert "lgdp demo" not in code and "dataset create" not in code
    # start_ckan.sh sources this file: it must not change its shell options.
    assert not re.search(r"^set\s+-", code, re.MULTILINE), "top-level `set -...` leaks"


@pytest.mark.parametrize(
    "script",
    [ENTRYPOINT_SCRIPT, *sorted(PG_INIT_DIR.glob("*.sh")), *sorted(SOLR_INIT_DIR.glob("*.sh")),
     SOLRCLOUD_INIT_SCRIPT],
    ids=lambda p: p.name,
)
def test_shell_scripts_parse(script):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert b"\r\n" not in script.read_bytes(), f"{script.name} has CRLF line ends"
