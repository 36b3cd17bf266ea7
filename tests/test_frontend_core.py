"""The front-end core shared by the CLI, the magics, the widgets and the Python API.

Provider options from each provider's options model (help and friendly
errors), the error classifier, the invoke payload, the status filter, and
provider resolution giving the same NotFound in every front end.
"""

from __future__ import annotations

import io

import pytest
from frontend_fakes import HELLO, make_provider
from pydantic import BaseModel, ConfigDict, Field

from weave_nb import cli
from weave_nb.config import DeploymentConfig
from weave_nb.errors import ConfigError


class FolderOptions(BaseModel):
    """A plug-in's options."""

    model_config = ConfigDict(extra="forbid")

    bucket_path: str = Field(default="/srv/weaves", description="where the weaves are copied")
    replicas: int = Field(default=1, ge=1, le=5, description="how many copies run")


def weave(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------- provider options
def test_a_bad_option_is_reported_in_plain_words_with_a_did_you_mean():
    provider = make_provider()(auth=None)
    provider.options_model = FolderOptions
    provider.name = "folder"
    with pytest.raises(ConfigError) as caught:
        provider.options(DeploymentConfig(name="x", options={"bucket_pth": "/x", "replicas": 9}))
    message, hint = caught.value.message, caught.value.suggestion
    assert message == ("invalid folder options: replicas must be less than or equal to 5; "
                       "unknown option 'bucket_pth' (did you mean 'bucket_path'?)")
    assert "Extra inputs" not in message and "Input should" not in message
    assert hint == "the folder options are: bucket_path, replicas; `weave deploy --help` describes them"


def test_the_cli_reports_a_mistyped_option_of_a_built_in_provider(weave_home, mock_weave):
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave), "-o", "startup_timeot=3")
    assert code == 2
    assert "unknown option 'startup_timeot' (did you mean 'startup_timeout'?)" in err
    assert "not permitted" not in err


def test_deploy_help_lists_every_providers_options_from_its_model(monkeypatch):
    """A plug-in's options show up in ``weave deploy --help`` and ``%weave_deploy -h`` like the built-ins'."""
    from weave_nb import registry

    plugin = type("FolderProvider", (make_provider(),), {"options_model": FolderOptions})
    real_load = registry.load_provider_class
    monkeypatch.setattr(registry, "provider_names", lambda: ["local", "docker", "folder"])
    monkeypatch.setattr(registry, "load_provider_class", lambda name: plugin if name == "folder" else real_load(name))
    code, out, _ = weave("deploy", "--help")
    assert code == 0
    listed = out.split("provider options (--option KEY=VALUE, repeatable):", 1)[1]
    assert "startup_timeout=float" in listed and "seconds to wait for /health" in listed  # local
    assert "health_timeout=float" in listed  # docker
    assert "  folder:" in listed and "bucket_path=str" in listed and "where the weaves are copied" in listed
    assert "replicas=int" in listed and "(default 1)" in listed

    from weave_nb.magics import WeaveMagics

    assert "bucket_path=str" in WeaveMagics.weave_deploy.parser.format_help()
