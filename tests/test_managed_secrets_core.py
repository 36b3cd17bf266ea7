"""Managed secrets before any provider: names checked, values found, the weave file's list merged; local passes them as env."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from weave_nb.core.errors import ConfigError
from weave_nb.core.manager import DeploymentManager
from weave_nb.frontends import cli

VALUE = "local-fake-secret-2Zx5Cv8Bn1"
WEAVE = """\
version: "1.0"
agents:
  one: {model: mock, outputs: out}
weaves:
  w: {agents: [one]}
deployment:
  secrets: [FROM_FILE]
"""


@pytest.fixture
def mgr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.weave.yaml").write_text(WEAVE)
    monkeypatch.setenv("FROM_FILE", VALUE)
    monkeypatch.setenv("FROM_FLAG", "flag-value-1234")
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    return DeploymentManager(home=tmp_path / "home")


def test_the_weave_files_secrets_and_the_flags_are_merged_and_get_their_values(mgr):
    config, _ = mgr.configure({"name": "demo", "weave_file": "w.weave.yaml", "secrets": ["FROM_FLAG"]})
    assert config.secrets == ["FROM_FILE", "FROM_FLAG"]
    assert config.env["FROM_FILE"].get_secret_value() == VALUE
    assert VALUE not in repr(config) and VALUE not in str(config.model_dump())
    # --env NAME=VALUE wins over the environment, as for any env value
    config, _ = mgr.configure({"name": "demo", "weave_file": "w.weave.yaml", "env": {"FROM_FILE": "given-by-flag"}})
    assert config.env["FROM_FILE"].get_secret_value() == "given-by-flag"


@pytest.mark.parametrize("names, words", [
    # the weave file's FROM_FILE is entry #1
    (["1BAD"], "entry #2 is not"), (["AWS_SECRET_ACCESS_KEY"], "reserved"), (["WEAVE_SECRET_ARNS"], "reserved"), ("not a list", "entry #2"),
])
def test_bad_secret_names_are_refused(mgr, names, words):
    with pytest.raises(ConfigError, match=words):
        mgr.configure({"name": "demo", "weave_file": "w.weave.yaml", "secrets": names})


def test_a_secret_with_no_value_says_how_to_give_one(mgr, monkeypatch):
    monkeypatch.delenv("FROM_FILE")
    with pytest.raises(ConfigError, match="secret FROM_FILE has no value") as caught:
        mgr.configure({"name": "demo", "weave_file": "w.weave.yaml"})
    assert "--env FROM_FILE=" in caught.value.suggestion


def test_the_cli_secret_flag_is_repeatable_and_local_passes_the_value_as_env(mgr, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["deploy", "--name", "sec", "-c", "w.weave.yaml", "--secret", "FROM_FLAG"], out=out, err=err)
    assert code == 0, err.getvalue()
    try:
        info = mgr.status("sec", "local")
        environ = Path(f"/proc/{info.details['pid']}/environ").read_bytes()
        assert f"FROM_FILE={VALUE}".encode() in environ and b"FROM_FLAG=flag-value-1234" in environ
        assert VALUE not in out.getvalue() + err.getvalue()
        assert VALUE.encode() not in (tmp_path / "home" / "inventory.db").read_bytes()
    finally:
        assert cli.main(["undeploy", "sec", "--force"], out=io.StringIO(), err=io.StringIO()) == 0
