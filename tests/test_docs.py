"""The docs cannot drift: runnable blocks run, references match the code, quoted errors exist, links resolve.

Runnable blocks are fenced code blocks whose info string is ``python runnable``
or ``bash runnable``, in README.md and every page under docs/ (sub-folders
too). A page's blocks run in order from the repository root with a private
``WEAVE_HOME`` and no cloud credentials; python blocks share one interpreter,
bash blocks get a ``weave`` function that runs the CLI.

Every other python or shell block says why it is not run, on the line right
before its fence: ``<!-- not run: needs an AWS account -->``. Text, yaml and
toml blocks are shown, not run, and need no reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers import DOCS, REPO_ROOT, alive, child_env, children_of

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)
OWNED_ELSEWHERE = {"magics.md", "widgets.md", "providers/aws.md"}  # written on other branches
CLOUD_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GCP_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "WEAVE_SANDBOX", "WEAVE_SANDBOX_PROVIDERS",
    "WEAVE_GCP_API_ENDPOINT", "WEAVE_GCP_RUN_ENDPOINT", "WEAVE_GCP_MONITORING_ENDPOINT",
)


def blocks(path: Path) -> list[tuple[str, str]]:
    """The fenced blocks of a page as ``(info string, body)``."""
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(path.read_text())]


def runnable(path: Path) -> list[tuple[str, str]]:
    """The page's runnable blocks as ``(language, body)``."""
    out = []
    for info, body in blocks(path):
        words = info.split()
        if "runnable" in words[1:]:
            assert words[0] in ("python", "bash"), f"{path}: runnable blocks are python or bash, not {words[0]}"
            out.append((words[0], body))
    return out


def page_id(path: Path) -> str:
    """A page's name in test ids and messages: ``README.md``, or its path under docs/ (``providers/gcp.md``)."""
    return "README.md" if path == README else path.relative_to(DOCS).as_posix()


def page_path(page: str) -> Path:
    return README if page == "README.md" else DOCS / page


README = REPO_ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
RUNNABLE_PAGES = [page_id(p) for p in [README, *PAGES] if runnable(p)]

# Blocks a reader copies into a shell or a Python prompt; text, yaml, toml and the like are shown, not run.
CODE_LANGUAGES = {"python", "py", "ipython", "bash", "sh", "shell", "console", "zsh"}
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.*\S.*) -->$")


def unaccounted_blocks(path: Path, name: str | None = None) -> list[str]:
    """Code blocks of a page that are neither runnable nor marked ``<!-- not run: REASON -->`` on the line before.

    A reason is a few words at least: ``<!-- not run: x -->`` or ``TODO`` do not count.
    """
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        words = m.group(1).split()
        if not words or words[0] not in CODE_LANGUAGES or "runnable" in words[1:]:
            continue
        before = text[:m.start()].splitlines()
        line = len(before) + 1
        marker = NOT_RUN.match(before[-1].strip()) if before else None
        reason = marker.group("reason").strip() if marker else ""
        if len(reason.split()) < 3 or reason.lower().startswith(("todo", "tbd", "fixme")):
            out.append(f"{name or page_id(path)}:{line}: ```{m.group(1).strip()} is not runnable and gives no reason")
    return out


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole markdown heading line) up to the next heading of the same or higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading)
    end = len(lines)
    for i in range(start + 1, len(lines)):
        m = re.match(r"^(#+) ", lines[i])
        if m and len(m.group(1)) <= level:
            end = i
            break
    return "\n".join(lines[start + 1:end])


# ----------------------------------------------------------------------------- the example plug-in
@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """examples/custom_provider pip-installed into a private folder (``pip install --target``)."""
    import shutil

    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    shutil.copytree(REPO_ROOT / "examples" / "custom_provider", src)  # builds happen in the copy, not the repo
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "weave_folder" / "provider.py").exists()
    return site


def doc_env(tmp_path: Path, plugin_site: Path) -> dict[str, str]:
    env = child_env(WEAVE_HOME=str(tmp_path / "weave-home"))
    for key in CLOUD_VARS:
        env.pop(key, None)
    env["HOME"] = str(tmp_path / "home")
    Path(env["HOME"]).mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")  # what the examples write under $TMPDIR stays in the test's folder
    Path(env["TMPDIR"]).mkdir(exist_ok=True)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), env["PYTHONPATH"]])
    return env


def _leftovers(home: Path) -> list[str]:
    if not (home / "inventory.db").exists():
        return []
    from weave_nb.core.inventory import Inventory

    return [f"{d.provider}/{d.name}" for d in Inventory(home).list()]


# ----------------------------------------------------------------------------- runnable blocks
def test_the_docs_have_runnable_examples():
    assert {"getting-started.md", "cli.md", "deployment-guide.md", "extending.md", "sandbox.md"} <= set(RUNNABLE_PAGES)
    assert sum(len(runnable(page_path(p))) for p in RUNNABLE_PAGES) >= 10


def test_every_code_block_runs_or_says_why_not():
    missing = [entry for page in [README, *PAGES] for entry in unaccounted_blocks(page)]
    assert not missing, "mark each block `runnable` or put <!-- not run: REASON --> on the line before it:\n" + "\n".join(missing)


def test_the_block_check_catches_a_block_without_a_reason(tmp_path):
    page = tmp_path / "probe.md"
    page.write_text(
        "```bash runnable\ntrue\n```\n\n"
        "<!-- not run: needs an AWS account -->\n```bash\nweave deploy --provider aws\n```\n\n"
        "```text\nshown, not run\n```\n\n"
        "```python\nprint('no reason')\n```\n\n"
        "<!-- not run: x -->\n```sh\necho too short a reason\n```\n\n"
        "<!-- not run: needs an AWS account -->\n\n```bash\necho the reason is not right before it\n```\n"
    )
    assert unaccounted_blocks(page, "probe.md") == [
        "probe.md:14: ```python is not runnable and gives no reason",
        "probe.md:19: ```sh is not runnable and gives no reason",
        "probe.md:25: ```bash is not runnable and gives no reason",
    ]


def test_pages_in_sub_folders_are_collected():
    assert "providers/gcp.md" in RUNNABLE_PAGES
    assert all(not p.startswith("/") and (DOCS / p).exists() or p == "README.md" for p in RUNNABLE_PAGES)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_runnable_blocks_run(page, tmp_path, plugin_site):
    env = doc_env(tmp_path, plugin_site)
    before = set(children_of(os.getpid()))
    python_parts = []
    for index, (lang, body) in enumerate(runnable(page_path(page)), 1):
        if lang == "python":
            python_parts.append(f"# --- block {index}\n{body}")
            continue
        script = 'weave() { "$WEAVE_PYTHON" -m weave_nb.frontends.cli "$@"; }\nset -euo pipefail\n' + body
        done = subprocess.run(
            ["bash", "-c", script], cwd=REPO_ROOT, env={**env, "WEAVE_PYTHON": sys.executable},
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, f"{page} bash block {index} failed:\n{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    if python_parts:
        done = subprocess.run(
            [sys.executable, "-c", "\n".join(python_parts)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, f"{page} python blocks failed:\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert _leftovers(tmp_path / "weave-home") == [], f"{page}'s examples leave deployments behind"
    from weave_nb.core.procutil import wait_for

    assert wait_for(lambda: not [p for p in children_of(os.getpid()) if p not in before and alive(p)], 15)


def test_a_failing_runnable_block_is_noticed(tmp_path, plugin_site):
    page = tmp_path / "bad.md"
    page.write_text("text\n\n```python runnable\nassert 1 == 2\n```\n\n```python\nnot run\n```\n")
    found = runnable(page)
    assert found == [("python", "assert 1 == 2\n")]
    done = subprocess.run([sys.executable, "-c", found[0][1]], capture_output=True, text=True)
    assert done.returncode != 0


# ----------------------------------------------------------------------------- CLI reference
def test_cli_reference_lists_every_flag_of_every_command_and_no_other():
    from weave_nb.frontends.arguments import CLI_COMMANDS as COMMANDS
    from weave_nb.frontends.cli import HELP

    text = (DOCS / "cli.md").read_text()
    assert set(HELP) == set(COMMANDS)
    for command, args in COMMANDS.items():
        heading = f"## weave {command}"
        assert heading in text.splitlines(), f"docs/cli.md has no section {heading!r}"
        body = section(text, heading)
        known = set()
        for flags, kwargs in args:
            for flag in flags:
                if flag.startswith("-"):
                    known.add(flag)
                    assert re.search(rf"`{re.escape(flag)}`", body), f"docs/cli.md: weave {command} does not mention {flag}"
                    row = next((line for line in body.splitlines() if line.startswith(f"| `{flags[0]}`")), "")
                    assert kwargs["help"] in row, f"docs/cli.md: weave {command} {flags[0]} should say {kwargs['help']!r}"
                else:
                    shown = kwargs.get("metavar") or flag.upper()
                    assert f"weave {command} {shown}" in body or f"weave {command} [{shown}]" in body, \
                        f"docs/cli.md: usage of weave {command} lacks {shown}"
        mentioned = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", body))
        unknown = {m for m in mentioned if m not in known and m != "-"}
        assert not unknown, f"docs/cli.md: weave {command} mentions flags it does not have: {sorted(unknown)}"


def test_cli_reference_lists_the_sandbox_magic_arguments():
    from weave_nb.sandbox.session import SERVICES
    from weave_nb.frontends.sandbox_magics import SandboxMagics

    text = section((DOCS / "cli.md").read_text(), "## %weave_sandbox")
    parser = SandboxMagics.weave_sandbox.parser
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}`" in text
        for choice in action.choices or []:
            assert f"`{choice}`" in text
    assert all(f"`{s}`" in text for s in SERVICES)


# ----------------------------------------------------------------------------- configuration reference
def _shown(value) -> set[str]:
    if value is None:
        return {"none"}
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, float) and value.is_integer():
        return {str(int(value)), str(value)}
    if value == [] or value == {}:
        return {json.dumps(value)}
    return {str(value)}


def _rows(body: str) -> dict[str, list[str]]:
    rows = {}
    for line in body.splitlines():
        m = re.match(r"^\| `([a-z_]+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def _check_table(body: str, model, where: str) -> None:
    from pydantic_core import PydanticUndefined

    rows = _rows(body)
    fields = model.model_fields
    assert set(rows) == set(fields), f"{where}: documented {sorted(rows)} but the code has {sorted(fields)}"
    for name, info in fields.items():
        default_cell = rows[name][1].strip("`* ").lower()
        if info.default_factory is not None:
            value = info.default_factory()
            if not isinstance(value, (list, dict)):
                continue  # computed at run time (e.g. the running interpreter); described in words
        elif info.default is PydanticUndefined:
            assert "required" in default_cell, f"{where}: {name} is required"
            continue
        else:
            value = info.default
        assert default_cell in {s.lower() for s in _shown(value)}, f"{where}: {name} default shown as {default_cell!r}, code says {value!r}"


def test_configuration_reference_matches_deployment_config():
    from weave_nb.core.config import DeploymentConfig

    text = (DOCS / "configuration.md").read_text()
    _check_table(section(text, "## DeploymentConfig"), DeploymentConfig, "DeploymentConfig")


@pytest.mark.parametrize("provider", ["local", "aws", "gcp", "docker"])
def test_configuration_reference_matches_each_providers_options(provider):
    from weave_nb.core.errors import ProviderUnavailable
    from weave_nb.core.registry import load_provider_class

    try:
        cls = load_provider_class(provider)
    except ProviderUnavailable as exc:
        pytest.skip(f"{provider} provider not importable here: {exc.message}")
    text = (DOCS / "configuration.md").read_text()
    heading = f"## Options of the `{provider}` provider"
    assert heading in text.splitlines()
    _check_table(section(text, heading), cls.options_model, heading)


def test_the_reference_check_catches_a_wrong_default():
    from pydantic import BaseModel

    class Model(BaseModel):
        retries: int = 3

    with pytest.raises(AssertionError, match="retries default"):
        _check_table("| `retries` | int | `4` | | x |", Model, "probe")
    with pytest.raises(AssertionError, match="documented"):
        _check_table("| `retry` | int | `3` | | x |", Model, "probe")


# ----------------------------------------------------------------------------- troubleshooting quotes
def _source_text() -> str:
    """Every string literal in the package (and the example plug-in), one per line.

    Implicitly concatenated literals come out joined (the parser does that);
    an f-string contributes each of its fixed pieces separately.
    """
    import ast

    files = list((REPO_ROOT / "weave_nb").rglob("*.py")) + list((REPO_ROOT / "examples" / "custom_provider").rglob("*.py"))
    pieces: list[str] = []
    for file in files:
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                pieces.extend(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces.append(node.value)
    return "\n".join(pieces)


def quoted_messages(path: Path) -> list[str]:
    """The ``error:`` and ``hint:`` lines quoted in a page's text blocks, without the prefix."""
    out = []
    for info, body in blocks(path):
        if info != "text":
            continue
        for line in body.splitlines():
            m = re.match(r"^\s*(?:error|hint): (.*)$", line)
            if m:
                out.append(m.group(1).removesuffix(" ...").removesuffix("; ..."))
    return out


def fragments(message: str) -> list[str]:
    """The fixed parts of a quoted message (``<...>`` marks a varying part)."""
    parts = re.split(r"<[^>]*>", message)
    cleaned = [p.strip().strip("'\":,").strip() for p in parts]
    return [p for p in cleaned if len(p) >= 3]


def test_troubleshooting_quotes_real_messages():
    source = _source_text()
    quotes = quoted_messages(DOCS / "troubleshooting.md")
    assert len(quotes) >= 30
    missing = [(q, f) for q in quotes for f in fragments(q) if f not in source]
    assert not missing, "quoted messages not found in the code:\n" + "\n".join(f"{q!r}: {f!r}" for q, f in missing)


def test_the_quote_check_catches_an_invented_message():
    source = _source_text()
    assert all(f in source for f in fragments("memory <20000> MB is outside Lambda's range"))
    assert not all(f in source for f in fragments("memory <20000> MB is far too much for Lambda"))


# ----------------------------------------------------------------------------- links
def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            resolved = (page.parent / target).resolve()
            rel = os.path.relpath(resolved, DOCS)
            if not resolved.exists() and rel not in OWNED_ELSEWHERE:
                broken.append(f"{page_id(page)} -> {target}")
    assert not broken, broken


def test_anchor_links_within_the_docs_exist():
    def anchors(text: str) -> set[str]:
        out = set()
        for heading in re.findall(r"^#+ (.*)$", text, re.M):
            slug = re.sub(r"[^\w\- %]", "", heading.lower()).replace(" ", "-").replace("%", "")
            out.add(slug)
        return out

    broken = []
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)]+)\)", page.read_text()):
            doc = (page.parent / target) if target else page
            if doc.exists() and anchor not in anchors(doc.read_text()):
                broken.append(f"{page_id(page)} -> {target}#{anchor}")
    assert not broken, broken


# ----------------------------------------------------------------------------- the custom provider, through the CLI
def test_custom_provider_is_installed_and_used_through_the_cli(tmp_path, plugin_site):
    env = doc_env(tmp_path, plugin_site)
    out_dir = tmp_path / "published"
    hello = str(REPO_ROOT / "examples" / "hello.weave.yaml")

    def weave(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "weave_nb.frontends.cli", *args], env={**env, **extra}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    refused = weave("deploy", "--provider", "folder", "--name", "hello", "--config", hello, "-o", f"root={out_dir}")
    assert refused.returncode == 2 and "no credentials for folder: none of FOLDER_TOKEN is set" in refused.stderr
    assert not out_dir.exists(), "nothing may be written before credentials are found"

    done = weave("deploy", "--provider", "folder", "--name", "hello", "--config", hello, "-o", f"root={out_dir}", FOLDER_TOKEN="tok-123456")
    assert done.returncode == 0, done.stderr
    assert "OK hello is active at file://" in done.stdout
    assert "tok-123456" not in done.stdout + done.stderr + (out_dir / "hello" / "published.json").read_text()

    again = weave("plan", "--provider", "folder", "--name", "hello", "--config", hello, "-o", f"root={out_dir}", FOLDER_TOKEN="tok-123456")
    assert again.returncode == 0 and "no-change" in again.stdout

    listed = weave("deployments", "--provider", "folder", FOLDER_TOKEN="tok-123456")  # listing asks the provider: it needs the token too
    assert listed.returncode == 0 and re.search(r"^hello\s+folder\s+active", listed.stdout, re.M), listed.stdout

    answer = weave("invoke", "hello", "--provider", "folder", "--input", "everyone")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["weave"] == "hello"

    bad = weave("deploy", "--provider", "folder", "--name", "big", "--config", hello, "-o", f"root={out_dir}", "-o", "max_kb=0", FOLDER_TOKEN="t")
    assert bad.returncode == 2 and "invalid folder options" in bad.stderr

    gone = weave("undeploy", "hello", "--provider", "folder", "--force")
    assert gone.returncode == 0, gone.stderr
    assert not (out_dir / "hello").exists()
    assert _leftovers(tmp_path / "weave-home") == []
