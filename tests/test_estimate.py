"""``weave estimate``: figures checked against arithmetic written out by hand, from the shipped dated table.

Every expected figure below is computed in the test from the published unit
prices (not read back from the code's own table), so a wrong formula, a wrong
unit, a wrong rounding or a wrong price in prices.json makes a test fail.
"""

from __future__ import annotations

import io
import json

import pytest

from weave_nb.core.errors import ConfigError
from weave_nb.core.estimate import estimate_deployment, load_prices, measure_tokens, model_price
from weave_nb.core.manager import DeploymentManager
from weave_nb.frontends import cli

# list prices as published by AWS, Google, OpenAI and Anthropic on 2024-10-01 (the table's date)
LAMBDA_X86_GB_S = 0.0000166667
LAMBDA_ARM_GB_S = 0.0000133334
LAMBDA_PER_M = 0.20
HTTP_API_PER_M = 1.00
RUN_TIER1_VCPU_S, RUN_TIER1_GIB_S = 0.000024, 0.0000025
RUN_TIER2_VCPU_S, RUN_TIER2_GIB_S = 0.0000336, 0.0000035
RUN_PER_M = 0.40
GPT4 = (30.0, 60.0)           # USD per 1M input, output tokens
CLAUDE_3_OPUS = (15.0, 75.0)

WEAVE = """\
version: "1.0"
agents:
  researcher: {model: gpt-4, outputs: research_summary}
  writer:     {model: "anthropic:claude-3-opus-20240229", inputs: researcher, outputs: draft}
weaves:
  content: {agents: [researcher, writer]}
"""
UNKNOWN_MODEL = WEAVE.replace("model: gpt-4,", "model: my-own-model,")


@pytest.fixture
def mgr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "w.weave.yaml").write_text(WEAVE)
    (tmp_path / "unknown.weave.yaml").write_text(UNKNOWN_MODEL)
    return DeploymentManager(home=tmp_path / "home")


def line(est, item):
    return next(x for x in est.lines if x.item == item or x.item.startswith(item))


def test_lambda_x86_64_with_a_function_url(mgr):
    est = estimate_deployment({"name": "demo", "provider": "aws", "region": "us-east-1", "memory_mb": 1024,
                               "weave_file": "w.weave.yaml"}, 100_000, 1500, "800,300", manager=mgr)
    # 100,000 requests x 1.5 s x 1 GB = 150,000 GB-s
    gb_s = 100_000 * 1.5 * (1024 / 1024)
    assert line(est, "compute").quantity == pytest.approx(150_000)
    assert line(est, "compute").monthly_usd == pytest.approx(gb_s * LAMBDA_X86_GB_S)          # $2.500005
    assert line(est, "requests").monthly_usd == pytest.approx(0.1 * LAMBDA_PER_M)            # $0.02
    assert line(est, "endpoint").monthly_usd == 0                                            # Function URL
    # gpt-4: 100,000 x 800 = 80M in at $30, 100,000 x 300 = 30M out at $60 -> 2400 + 1800
    assert line(est, "model researcher").monthly_usd == pytest.approx(80 * GPT4[0] + 30 * GPT4[1])  # $4,200
    # claude-3-opus (dated id, anthropic: prefix): 80M x $15 + 30M x $75 -> 1200 + 2250
    assert line(est, "model writer").monthly_usd == pytest.approx(80 * CLAUDE_3_OPUS[0] + 30 * CLAUDE_3_OPUS[1])  # $3,450
    assert est.total == pytest.approx(2.500005 + 0.02 + 0 + 4200 + 3450)
    text = est.text()
    assert "total: $7,652.52 / month" in text
    assert "prices as of 2024-10-01" in text and "AWS Lambda pricing" in text
    assert "free tier not subtracted" in text


def test_lambda_arm64_behind_an_http_api_with_and_without_the_free_tier(mgr):
    values = {"name": "demo", "provider": "aws", "region": "us-east-1", "memory_mb": 512, "weave_file": "w.weave.yaml",
              "options": {"architecture": "arm64", "endpoint": "api"}}
    est = estimate_deployment(values, 2_000_000, 200, "0,0", manager=mgr)
    # 2,000,000 x 0.2 s x 0.5 GB = 200,000 GB-s at the arm64 price
    assert line(est, "compute").quantity == pytest.approx(200_000)
    assert line(est, "compute").monthly_usd == pytest.approx(200_000 * LAMBDA_ARM_GB_S)  # $2.66668
    assert line(est, "requests").monthly_usd == pytest.approx(2 * LAMBDA_PER_M)          # $0.40
    assert line(est, "endpoint").monthly_usd == pytest.approx(2 * HTTP_API_PER_M)        # $2.00
    free = estimate_deployment(values, 2_000_000, 200, "0,0", free_tier=True, manager=mgr)
    # 200,000 GB-s is inside the 400,000 free GB-s; 1,000,000 of the 2,000,000 requests are free
    assert line(free, "compute").monthly_usd == 0
    assert line(free, "requests").monthly_usd == pytest.approx(1 * LAMBDA_PER_M)
    assert line(free, "endpoint").monthly_usd == pytest.approx(2 * HTTP_API_PER_M)       # API Gateway's free tier is not Lambda's
    assert "free tier subtracted" in free.text()


def test_lambda_bills_each_started_millisecond(mgr):
    est = estimate_deployment({"name": "demo", "provider": "aws", "region": "us-east-1", "memory_mb": 128,
                               "weave_file": "w.weave.yaml"}, 1000, 1.2, "0,0", manager=mgr)
    # 1.2 ms is billed as 2 ms: 1000 x 0.002 s x 0.125 GB = 0.25 GB-s
    assert line(est, "compute").quantity == pytest.approx(0.25)


def test_cloud_functions_gen2_by_the_cpu_tier_of_the_memory(mgr):
    values = {"name": "demo", "provider": "gcp", "region": "us-central1", "memory_mb": 1024, "weave_file": "w.weave.yaml"}
    est = estimate_deployment(values, 1_000_000, 250, "0,0", manager=mgr)
    # 250 ms is billed as 300 ms (100 ms steps); 1 GiB gets 0.583 vCPU
    vcpu_s = 1_000_000 * 0.3 * 0.583      # 174,900 vCPU-s
    gib_s = 1_000_000 * 0.3 * 1.0         # 300,000 GiB-s
    assert line(est, "compute (vCPU)").quantity == pytest.approx(174_900)
    assert line(est, "compute (vCPU)").monthly_usd == pytest.approx(vcpu_s * RUN_TIER1_VCPU_S)   # $4.1976
    assert line(est, "compute (memory)").monthly_usd == pytest.approx(gib_s * RUN_TIER1_GIB_S)  # $0.75
    assert line(est, "requests").monthly_usd == pytest.approx(1 * RUN_PER_M)                     # $0.40
    assert est.total == pytest.approx(4.1976 + 0.75 + 0.40)
    tier2 = estimate_deployment({**values, "region": "europe-west2", "memory_mb": 256}, 1_000_000, 250, "0,0", manager=mgr)
    # 256 MB gets 0.167 vCPU and 0.25 GiB, at the tier 2 prices
    assert line(tier2, "compute (vCPU)").monthly_usd == pytest.approx(1_000_000 * 0.3 * 0.167 * RUN_TIER2_VCPU_S)  # $1.68336
    assert line(tier2, "compute (memory)").monthly_usd == pytest.approx(1_000_000 * 0.3 * 0.25 * RUN_TIER2_GIB_S)  # $0.2625
    free = estimate_deployment(values, 1_000_000, 250, "0,0", free_tier=True, manager=mgr)
    # free: 180,000 vCPU-s, 360,000 GiB-s, 2M requests -> all three inside it
    assert [line(free, i).monthly_usd for i in ("compute (vCPU)", "compute (memory)", "requests")] == [0, 0, 0]


def test_a_price_file_overrides_the_shipped_table_and_is_named(mgr, tmp_path):
    prices = tmp_path / "mine.yaml"
    prices.write_text('date: "2031-01-15"\nsource: our negotiated rates\n'
                      "models:\n  my-own-model: {input_per_million: 1.0, output_per_million: 2.0}\n"
                      "  gpt-4: {input_per_million: 20.0, output_per_million: 40.0}\n")
    est = estimate_deployment({"name": "demo", "provider": "docker", "weave_file": "unknown.weave.yaml"}, 1000,
                              tokens_per_call="1000,500", prices=str(prices), manager=mgr)
    # 1000 requests x 1000 in = 1M at $1, 1000 x 500 out = 0.5M at $2 -> $2.00
    assert line(est, "model researcher").monthly_usd == pytest.approx(1 * 1.0 + 0.5 * 2.0)
    # the file's other entries leave the rest of the table in place: claude-3-opus still at the shipped price
    assert line(est, "model writer").monthly_usd == pytest.approx(1 * CLAUDE_3_OPUS[0] + 0.5 * CLAUDE_3_OPUS[1])
    assert est.prices_date == "2031-01-15" and "our negotiated rates" in est.footer()
    assert load_prices(prices)["models"]["gpt-4"]["input_per_million"] == 20.0


def test_an_unknown_model_or_region_says_no_price_and_is_left_out_of_the_total(mgr):
    est = estimate_deployment({"name": "demo", "provider": "aws", "region": "us-east-1", "weave_file": "unknown.weave.yaml"},
                              1000, 100, "10,10", manager=mgr)
    unknown = line(est, "model researcher")
    assert unknown.monthly_usd is None and unknown.price == "no price"
    row = next(r for r in est.text().splitlines() if r.startswith("model researcher"))
    assert "no price" in row and "$" not in row.split("no price")[0].split("tokens")[-1]
    assert "not included: model researcher (my-own-model)" in est.text()
    assert est.total == pytest.approx(sum(x.monthly_usd for x in est.lines if x.monthly_usd is not None))
    far = estimate_deployment({"name": "demo", "provider": "aws", "region": "ap-east-1", "weave_file": "w.weave.yaml"},
                              1000, 100, "10,10", manager=mgr)
    assert line(far, "compute").price == "no price" and line(far, "compute").monthly_usd is None
    assert "ap-east-1" in line(far, "compute").note
    assert model_price("gpt-4o-mini-2024-07-18", load_prices())[0] == "gpt-4o-mini"
    assert model_price("gpt-5-imaginary", load_prices()) is None


def test_docker_and_local_compute_is_your_machine_and_models_are_still_priced(mgr):
    for provider in ("docker", "local"):
        est = estimate_deployment({"name": "demo", "provider": provider, "weave_file": "w.weave.yaml"}, 10, 100, "1000,1000",
                                  manager=mgr)
        compute = line(est, "compute")
        assert compute.monthly_usd is None and "your own machine" in compute.note
        # gpt-4: 10 x 1000 = 10,000 in and out: 0.01M x $30 + 0.01M x $60
        assert line(est, "model researcher").monthly_usd == pytest.approx(0.01 * 30 + 0.01 * 60)


def test_measured_tokens_come_from_running_the_weave_on_the_mock_model(mgr):
    spec = mgr.load_spec(type("C", (), {"weave_text": None, "weave_file": "w.weave.yaml"})())
    measured = measure_tokens(spec, "content", "three short words")
    # the researcher's prompt holds the input; the mock answers with a sentence of its own
    assert list(measured) == ["researcher", "writer"]
    assert measured["researcher"][0] >= 3 and measured["researcher"][1] > 0
    assert measured["writer"][0] > measured["researcher"][1]  # the writer reads the researcher's answer
    est = estimate_deployment({"name": "demo", "provider": "local", "weave_file": "w.weave.yaml"}, 1000, sample="three short words",
                              manager=mgr)
    tin, tout = measured["researcher"]
    assert line(est, "model researcher").monthly_usd == pytest.approx(1000 * (tin * GPT4[0] + tout * GPT4[1]) / 1e6)
    assert "measured with the mock model" in line(est, "model researcher").note


def test_an_estimate_needs_no_secret_values(mgr, tmp_path, monkeypatch):
    monkeypatch.delenv("NOWHERE_SET", raising=False)
    (tmp_path / "s.weave.yaml").write_text(WEAVE + "deployment:\n  secrets: [NOWHERE_SET]\n")
    est = estimate_deployment({"name": "demo", "provider": "gcp", "weave_file": "s.weave.yaml"}, 10, 100, "1,1", manager=mgr)
    assert est.total > 0
    with pytest.raises(ConfigError, match="NOWHERE_SET has no value"):  # a deploy does need it
        mgr.configure({"name": "demo", "provider": "gcp", "weave_file": "s.weave.yaml"})


def test_bad_figures_are_refused_before_anything(mgr):
    with pytest.raises(ConfigError, match="IN,OUT"):
        estimate_deployment({"name": "demo", "provider": "aws", "weave_file": "w.weave.yaml"}, 10, tokens_per_call="800", manager=mgr)
    with pytest.raises(ConfigError, match="requests"):
        estimate_deployment({"name": "demo", "provider": "aws", "weave_file": "w.weave.yaml"}, -1, manager=mgr)
    with pytest.raises(ConfigError, match="not valid JSON"):
        bad = mgr.home.parent / "bad.json"
        bad.write_text("{not json")
        estimate_deployment({"name": "demo", "provider": "aws", "weave_file": "w.weave.yaml"}, 10, prices=str(bad), manager=mgr)


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_cli_prints_the_table_total_and_dated_source(mgr, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(mgr.home))
    code, out, err = run_cli("estimate", "--name", "demo", "-p", "gcp", "-c", "w.weave.yaml", "--requests", "1e6",
                             "--duration-ms", "250", "--memory", "1024", "--tokens-per-call", "0,0")
    assert code == 0, err
    assert "total: $5.35 / month" in out  # 4.1976 + 0.75 + 0.40 = 5.3476
    assert "prices as of 2024-10-01" in out
    code, out, err = run_cli("estimate", "--name", "demo", "-p", "gcp", "-c", "w.weave.yaml")
    assert code == 2 and "--requests is required" in err


def test_plan_estimate_adds_the_monthly_figure_to_the_plan(mgr, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(mgr.home))
    code, out, err = run_cli("plan", "--name", "demo", "-c", "w.weave.yaml", "--estimate", "--requests", "1000",
                             "--tokens-per-call", "100,100")
    assert code == 0, err
    assert "+ " in out or "create" in out  # the plan itself
    # 1000 x 100 = 0.1M in and out per agent: gpt-4 0.1 x 30 + 0.1 x 60 = 9; opus 0.1 x 15 + 0.1 x 75 = 9
    assert "total: $18.00 / month (not included: compute)" in out
    code, _, err = run_cli("plan", "--name", "demo", "-c", "w.weave.yaml", "--estimate")
    assert code == 2 and "--requests" in err


def test_the_magic_returns_a_dataframe_and_prints_the_total(mgr, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.frontends.magics import WeaveMagics

    shell = InteractiveShell.instance()
    shell.register_magics(WeaveMagics(shell, manager=mgr))
    frame = shell.run_line_magic("weave_estimate", "--name demo -p aws -r us-east-1 -c w.weave.yaml --requests 100000 "
                                                   "--duration-ms 1500 --memory 1024 --tokens-per-call 800,300")
    assert list(frame["item"])[:3] == ["compute", "requests", "endpoint"]
    assert frame.attrs["total_usd"] == pytest.approx(7652.520005)
    printed = capsys.readouterr().out
    assert "$7,652.52 / month" in printed and "prices as of 2024-10-01" in printed


def test_the_python_api(mgr):
    import weave_nb

    est = weave_nb.estimate("demo", "aws", requests=100_000, duration_ms=1500, tokens_per_call=(800, 300), memory_mb=1024,
                            region="us-east-1", weave_file="w.weave.yaml", manager=mgr)
    assert est.total == pytest.approx(7652.520005)
    assert "<table>" in est._repr_html_()
    assert json.loads(json.dumps(est.rows()))[0]["item"] == "compute"
