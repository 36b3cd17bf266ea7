"""Hostile or broken input: every case is one clear WeaveError (exit 2 in the CLI), nothing created, bounded.

Weave files (alias bombs, NUL bytes, devices, FIFOs, huge files, very long
dependency chains), deployment names in every command, a damaged inventory,
and wrong types given to the Python API.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import weave_nb
from weave_nb.core.errors import ConfigError, InventoryError, WeaveSpecError
from weave_nb.runtime import engine
from weave_nb.spec.model import MAX_WEAVE_BYTES, load_weave, parse_weave

from conftest import run_weave

SMALL = 'version: "1.0"\nagents:\n  a: {model: mock}\nweaves:\n  main: [a]\n'


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" nested inside agents.a.config: 10**levels values once expanded."""
    lines = ["      l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return 'version: "1.0"\nagents:\n  a:\n    model: mock\n    config:\n' + "\n".join(lines) + "\nweaves:\n  main: [a]\n"


def chain(n: int, reverse: bool) -> str:
    """A weave of ``n`` agents, each reading the one before; listed last-first when ``reverse``."""
    names = range(n - 1, -1, -1) if reverse else range(n)
    agents = "".join(f"  a{i}: {{model: mock{f', inputs: a{i - 1}' if i else ''}}}\n" for i in names)
    return f'version: "1.0"\nagents:\n{agents}weaves:\n  main: [{", ".join(f"a{i}" for i in names)}]\n'


def one_error(stderr: str) -> str:
    """The CLI's error: one ``error:`` line, then one ``hint:`` line, nothing else (no traceback)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  hint: "), stderr
    assert "unexpected" not in stderr and "bug" not in stderr
    return lines[0]


# --------------------------------------------------------------------------- weave files


@pytest.mark.timeout(30)
def test_alias_bomb_inside_agent_config_is_rejected_before_expanding():
    with pytest.raises(WeaveSpecError) as err:
        parse_weave(alias_bomb(), source="bomb.weave.yaml")
    assert "bomb.weave.yaml, line " in err.value.message and "alias bomb" in err.value.message
    assert err.value.suggestion


@pytest.mark.timeout(30)
def test_alias_bomb_of_long_strings_is_bounded_by_text_size():
    big = "y" * 100_000
    text = (f'version: "1.0"\nagents:\n  a:\n    model: mock\n    config:\n      s: &s "{big}"\n'
            f"      l: [{', '.join(['*s'] * 200)}]\nweaves:\n  main: [a]\n")
    with pytest.raises(WeaveSpecError, match="MiB of text"):
        parse_weave(text)


def test_small_aliases_still_work():
    text = ('version: "1.0"\nagents:\n  a: {model: mock, config: &c {temperature: 0.2}}\n'
            "  b: {model: mock, config: *c}\nweaves:\n  main: [a, b]\n")
    assert parse_weave(text).agents["b"].config == {"temperature": 0.2}


def test_recursive_alias_is_rejected():
    text = 'version: "1.0"\nagents:\n  a: {model: mock, config: &c {again: [*c]}}\nweaves:\n  main: [a]\n'
    with pytest.raises(WeaveSpecError, match="recursive alias"):
        parse_weave(text)


def test_config_values_json_cannot_carry_are_named():
    text = 'version: "1.0"\nagents:\n  a: {model: mock, config: {since: 2024-01-01}}\nweaves:\n  main: [a]\n'
    with pytest.raises(WeaveSpecError, match=r"agents\.a\.config\.since must be text"):
        parse_weave(text)


@pytest.mark.parametrize("char, shown", [("\x00", "a NUL byte"), ("\x07", "the character U+0007")])
def test_reader_error_names_file_line_and_column(tmp_path, char, shown):
    path = tmp_path / "bad.weave.yaml"
    path.write_text(f'version: "1.0"\nagents:\n  a: {{model: mo{char}ck}}\nweaves:\n  main: [a]\n')
    with pytest.raises(WeaveSpecError) as err:
        load_weave(path)
    assert f"{path} contains {shown} at line 3, column 16" in err.value.message
    assert err.value.suggestion


@pytest.mark.timeout(30)
def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    with pytest.raises(WeaveSpecError, match="not a regular file .*character device"):
        load_weave("/dev/zero")
    fifo = tmp_path / "pipe.weave.yaml"
    os.mkfifo(fifo)
    with pytest.raises(WeaveSpecError, match="named pipe"):
        load_weave(fifo)  # no writer: a blocking open would wait forever


def test_size_cap_is_checked_before_reading(tmp_path):
    path = tmp_path / "huge.weave.yaml"
    with open(path, "wb") as fh:  # sparse: 50 MB that were never written
        fh.write(SMALL.encode())
        fh.truncate(50_000_000)
    with pytest.raises(WeaveSpecError, match="50,000,000 bytes; a weave file may be at most 1024 KiB"):
        load_weave(path)
    padded = SMALL + "#" * MAX_WEAVE_BYTES + "\n"
    with pytest.raises(WeaveSpecError, match="larger than 1024 KiB"):
        parse_weave(padded)  # the same cap for text given directly (a cell, weave_text)
    assert parse_weave(SMALL + "# " + "x" * (MAX_WEAVE_BYTES - len(SMALL) - 10) + "\n").agents


@pytest.mark.parametrize("bad", [3, None, "a\x00b"])
def test_weave_path_of_wrong_type(bad):
    with pytest.raises(WeaveSpecError):
        load_weave(bad)


@pytest.mark.timeout(60)
def test_1500_agent_chain_listed_in_reverse_plans_and_runs():
    spec = parse_weave(chain(1500, reverse=True))
    order = spec.execution_order("main")
    assert order == [f"a{i}" for i in range(1500)]
    answer = engine.run_weave(spec.to_runtime_dict(), None, "go", environ={})
    assert [a["name"] for a in answer["agents"]] == order


def test_long_cycle_is_still_named():
    text = chain(3000, reverse=True).replace("a0: {model: mock}", "a0: {model: mock, inputs: a2999}")
    with pytest.raises(WeaveSpecError, match=r"cycle between agents: a2999 -> a2998 -> a2997 -> a2996 -> a2995 -> \.\.\. \(2991 more\) -> a3 -> a2 -> a1 -> a0 -> a2999\."):
        parse_weave(text)


@pytest.mark.timeout(120)
def test_20000_agent_weave_listed_in_reverse_validates():
    spec = parse_weave(chain(20_000, reverse=True))  # the worst case for a scan-the-list topological sort
    assert spec.execution_order("main")[-1] == "a19999"


def test_20000_agents_in_reverse_with_ties_keep_list_order():
    # no dependencies at all: the order is the weave's list order, whatever the file order
    names = [f"n{i}" for i in range(20_000)]
    text = ('version: "1.0"\nagents:\n' + "".join(f"  {n}: mock\n" for n in reversed(names))
            + f"weaves:\n  main: [{', '.join(names)}]\n")
    assert parse_weave(text).execution_order("main") == names


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", ["bomb", "nul", "dev-zero", "fifo", "huge", "deep"])
def test_cli_refuses_hostile_weave_files(case, tmp_path, subprocess_env, weave_home):
    path = tmp_path / f"{case}.weave.yaml"
    if case == "bomb":
        path.write_text(alias_bomb())
    elif case == "nul":
        path.write_bytes(SMALL.replace("mock", "mo\0ck").encode())
    elif case == "dev-zero":
        path = Path("/dev/zero")
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "deep":  # libyaml's own composer would crash the process (SIGSEGV) here
        path.write_text(SMALL + "junk: " + "[" * 300_000 + "]" * 300_000 + "\n")
    else:
        path.write_text(SMALL + "#" * 50_000_000 + "\n")
    done = run_weave(["deploy", "--name", "hostile", "--config", str(path)], subprocess_env, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert str(path) in one_error(done.stderr)
    assert not (weave_home / "local").exists() and not list(weave_home.glob("locks/*"))


# --------------------------------------------------------------------------- deployment names

BAD_NAMES = ["../x", "a" * 300, "日本", "-x", "", "a/b", "demo\n", "x" * 64]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", [["undeploy", "--force"], ["status"], ["invoke"], ["logs"]])
def test_cli_checks_the_name_in_every_command(command, name, weave_home, tmp_path, monkeypatch):
    from weave_nb.frontends import cli
    import io

    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([command[0], *command[1:], "--", name], out=out, err=err, stdin=io.StringIO("y\n"))
    assert code == 2, err.getvalue()
    assert "invalid deployment name" in one_error(err.getvalue())
    assert not weave_home.exists() and not list(tmp_path.rglob("*.lock"))


@pytest.mark.parametrize("argv", [
    ["undeploy", "../x", "--force"],
    ["undeploy", "a" * 300, "--force"],
    ["status", "日本"],
    ["status", "日本", "--provider", "aws"],
    ["invoke", "a/b"],
    ["logs", "--", "-x"],
    ["plan", "--name", "demo\n"],
])
def test_cli_subprocess_bad_names_exit_2_and_create_nothing(argv, subprocess_env, weave_home, tmp_path, mock_weave):
    if argv[0] == "plan":
        argv = [*argv, "--config", str(mock_weave)]
    done = run_weave(argv, subprocess_env, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "invalid deployment" in one_error(done.stderr)
    assert not list(tmp_path.rglob("*.lock")) and not list(weave_home.rglob("*.lock"))


@pytest.mark.parametrize("call", ["undeploy", "status", "invoke", "logs"])
@pytest.mark.parametrize("name", ["a\x00b", "../x", 5, None])
def test_api_checks_the_name(call, name, weave_home):
    with pytest.raises(ConfigError, match="invalid deployment name") as err:
        getattr(weave_nb, call)(name)
    assert "\n" not in err.value.message and err.value.suggestion
    assert not weave_home.exists()


@pytest.mark.parametrize("op", ["status", "destroy", "invoke", "logs"])
def test_manager_checks_the_name_before_touching_anything(op, manager, weave_home):
    before = files_under(weave_home)
    with pytest.raises(ConfigError, match="invalid deployment name"):
        getattr(manager, op)("../../outside")
    assert files_under(weave_home) == before


def test_inventory_lock_refuses_bad_names_before_creating_a_file(tmp_path):
    from weave_nb.core.inventory import Inventory

    inv = Inventory(tmp_path / "home")
    for provider, name in [("local", "../../escape"), ("local", "a" * 300), ("../..", "x"), ("local", "ok\n")]:
        with pytest.raises(ConfigError):
            with inv.lock(provider, name):
                pass
        assert not inv.is_locked(provider, name)
    assert not list(tmp_path.rglob("*.lock"))


# --------------------------------------------------------------------------- the inventory


def damage_file(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(os.urandom(3000))
    else:  # truncated: a real inventory cut in half
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_damaged_inventory_is_one_clear_error_and_moving_it_aside_recovers(how, weave_home, subprocess_env, tmp_path):
    from weave_nb.core.inventory import Inventory

    inv = Inventory(weave_home)
    for i in range(40):  # enough rows for several pages, so half a file is really damaged
        inv.save("local", f"d{i}", details={"pad": "x" * 200})
    db = weave_home / "inventory.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage_file(db, how)
    for argv in (["deployments"], ["status", "d1"], ["undeploy", "d1", "--force"]):
        done = run_weave(argv, subprocess_env, timeout=60, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        line = one_error(done.stderr)
        assert f"the inventory {db} is damaged" in line and "mv " in done.stderr
    with pytest.raises(InventoryError):
        weave_nb.deployments(refresh=False)
    for leftover in weave_home.glob("inventory.db*"):
        leftover.rename(leftover.with_name(leftover.name + ".broken"))
    done = run_weave(["deployments", "--no-refresh"], subprocess_env, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # a new, empty inventory, as the hint says


def break_rows(home: Path) -> None:
    with sqlite3.connect(home / "inventory.db") as conn:
        conn.execute("UPDATE deployments SET details='{not json' WHERE name='badjson'")
        conn.execute("UPDATE deployments SET status='exploded' WHERE name='badstatus'")
        conn.execute("UPDATE deployments SET created_at='yesterday' WHERE name='baddate'")


def test_one_bad_row_is_skipped_with_a_note_not_fatal(manager, weave_home, subprocess_env, tmp_path):
    for name in ("good", "badjson", "badstatus", "baddate"):
        manager.inventory.save("local", name, status="failed")
    break_rows(weave_home)
    listing = manager.list(refresh=False)
    assert [d.name for d in listing.deployments] == ["good"]
    notes = "\n".join(listing.notes)
    assert "local/badjson (details is not valid JSON)" in notes
    assert "local/badstatus (unknown status 'exploded')" in notes
    assert "local/baddate (created_at is not a date)" in notes
    assert "weave undeploy badjson --provider local" in notes
    done = run_weave(["deployments", "--no-refresh"], subprocess_env, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "good" in done.stdout and "badjson" not in done.stdout
    assert "note: skipped the damaged inventory record local/badstatus" in done.stderr
    # the damaged deployment itself still answers, and can be undeployed (which forgets it)
    info = manager.inventory.get("local", "badstatus")
    assert info.status.value == "failed" and "inventory record is damaged" in info.message
    assert manager.provider_of("good") == "local" and manager.status("good").name == "good"
    for name in ("badjson", "badstatus", "baddate"):
        manager.destroy(name, "local")
    assert manager.list(refresh=False).notes == [] and manager.inventory.get("local", "badjson") is None


def test_home_that_is_a_file_is_a_clear_error(tmp_path, subprocess_env):
    home = tmp_path / "not-a-folder"
    home.write_text("x")
    done = run_weave(["deployments"], {**subprocess_env, "WEAVE_HOME": str(home)}, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "WEAVE_HOME" in one_error(done.stderr) + done.stderr


# --------------------------------------------------------------------------- Python API argument types

API_CASES = {
    "deploy options list": lambda f: weave_nb.deploy(name="x", options=["a"], weave_file=f, dry_run=True),
    "deploy env list": lambda f: weave_nb.deploy(name="x", env=["A=1"], weave_file=f, dry_run=True),
    "deploy env value int": lambda f: weave_nb.deploy(name="x", env={"A": 1}, weave_file=f, dry_run=True),
    "deploy env key int": lambda f: weave_nb.deploy(name="x", env={1: "a"}, weave_file=f, dry_run=True),
    "deploy provider int": lambda f: weave_nb.deploy(name="x", provider=3, weave_file=f, dry_run=True),
    "deploy weave_file int": lambda f: weave_nb.deploy(name="x", weave_file=3, dry_run=True),
    "deploy weave_text bytes": lambda f: weave_nb.deploy(name="x", weave_text=b"version: '1.0'", dry_run=True),
    "deploy defaults list": lambda f: weave_nb.deploy(name="x", defaults=[1], weave_file=f, dry_run=True),
    "deploy sink str": lambda f: weave_nb.deploy(name="x", sink="print", weave_file=f, dry_run=True),
    "deploy dry_run str": lambda f: weave_nb.deploy(name="x", weave_file=f, dry_run="no"),
    "deploy name list": lambda f: weave_nb.deploy(name=["x"], weave_file=f, dry_run=True),
    "deploy unknown setting": lambda f: weave_nb.deploy(name="x", memroy_mb=5, weave_file=f, dry_run=True),
    "plan options str": lambda f: weave_nb.plan(name="x", options="runtime=python3.12", weave_file=f),
    "deployments status bogus": lambda f: weave_nb.deployments(status="bogus", refresh=False),
    "deployments status int": lambda f: weave_nb.deployments(status=3, refresh=False),
    "deployments provider int": lambda f: weave_nb.deployments(provider=3, refresh=False),
    "deployments refresh str": lambda f: weave_nb.deployments(refresh="no"),
    "undeploy provider int": lambda f: weave_nb.undeploy("x", provider=5),
    "status provider list": lambda f: weave_nb.status("x", provider=["aws"]),
    "invoke input int": lambda f: weave_nb.invoke("x", input=5),
    "invoke input dict": lambda f: weave_nb.invoke("x", input={"q": 1}),
    "invoke weave int": lambda f: weave_nb.invoke("x", weave=5),
    "invoke unknown keyword": lambda f: weave_nb.invoke("x", timeuot=5),
    "invoke timeout str": lambda f: weave_nb.invoke("x", timeout="5"),
    "logs tail str": lambda f: weave_nb.logs("x", tail="10"),
    "logs tail negative": lambda f: weave_nb.logs("x", tail=-1),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_wrong_types_are_config_errors_with_a_hint(case, weave_home, mock_weave):
    with pytest.raises(ConfigError) as err:
        API_CASES[case](str(mock_weave))
    assert err.value.suggestion and "\n" not in err.value.message
    assert not list(weave_home.rglob("*.lock")) and not (weave_home / "local").exists()


def test_api_unknown_provider_is_named_even_without_refresh(weave_home):
    from weave_nb.core.errors import ProviderUnavailable

    with pytest.raises(ProviderUnavailable, match="unknown provider 'asw'"):
        weave_nb.deployments(provider="asw", refresh=False)


def test_api_accepts_a_path_and_any_case_of_status(weave_home, mock_weave):
    assert weave_nb.plan(name="x", weave_file=mock_weave).steps  # a pathlib.Path, not only str
    assert len(weave_nb.deployments(status="ACTIVE", refresh=False)) == 0


@pytest.mark.parametrize("argv, expected", [
    (["logs", "demo", "--tail", "-5"], "--tail: must be at least 1"),
    (["logs", "demo", "--tail", "many"], "--tail: must be a whole number"),
    (["plan", "--name", "demo", "--option", "=x"], "no KEY before '='"),
])
def test_cli_odd_flag_values_are_usage_errors(argv, expected, weave_home, mock_weave):
    from weave_nb.frontends import cli
    import io

    if argv[0] == "plan":
        argv = [*argv, "--config", str(mock_weave)]
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(argv, out=out, err=err) == 2
    assert expected in err.getvalue() and "Traceback" not in err.getvalue()
