"""The monthly cost of a deployment, estimated before it is made (``weave estimate``).

Figures come from a dated price table shipped with the package
(``weave_nb/core/prices.json``), which a user's file may override
(``--prices FILE``, JSON or YAML, merged over the shipped table). Every line
of an estimate is one priced quantity: compute, requests, the endpoint and,
for each agent of the weave, its model's tokens. Whatever the table does not
price (an unknown model or region) says ``no price``; nothing is guessed.

Decisions (documented in docs/releases-estimate-secrets.md):

* Free tiers are **not** subtracted unless asked (``free_tier=True``,
  ``--free-tier``): they are per account, shared by everything in it.
* Lambda bills duration per 1 ms; Cloud Functions gen2 (Cloud Run request
  billing) per 100 ms, with the vCPU the memory size gets by default.
* Docker and local run on the user's machine: compute is not priced, model
  calls are.
* Tokens per call are given (``IN,OUT``) or measured by running the weave
  once in this process with the offline ``mock`` model: a baseline (the
  mock's answers are short, so real answers usually cost more).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["Estimate", "EstimateLine", "load_prices", "model_price", "compute_lines", "model_lines",
           "measure_tokens", "parse_tokens_per_call", "estimate_deployment", "money"]

DEFAULT_DURATION_MS = 1000.0
DEFAULT_MEMORY = {"aws": 256, "gcp": 256}
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
_PREFIXES = ("openai:", "anthropic:")


@dataclasses.dataclass(frozen=True)
class EstimateLine:
    """One priced quantity of a month.

    Attributes:
        item: what is priced (``compute``, ``requests``, ``endpoint``, ``model <agent>``).
        quantity: how much a month, in ``unit`` (``None`` when not counted).
        unit: the unit of ``quantity``.
        price: the unit price as text (``$0.20 / 1M requests``), or why there is none.
        monthly_usd: the month's cost in USD; ``None`` when there is no price.
        note: how the quantity was found, or why it is not priced.
    """

    item: str
    quantity: float | None
    unit: str
    price: str
    monthly_usd: float | None
    note: str = ""

    def row(self) -> dict[str, Any]:
        """A flat dict for tables and DataFrames."""
        return {"item": self.item, "quantity": self.quantity, "unit": self.unit, "price": self.price,
                "monthly_usd": self.monthly_usd, "note": self.note}


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A month's estimated cost of one deployment.

    Attributes:
        name, provider, region: the deployment estimated.
        requests: requests a month; duration_ms: the time one request runs.
        lines: the priced quantities (see :class:`EstimateLine`).
        prices_date, prices_source: when and where the prices were published.
        assumptions: what the figures take for granted (memory, architecture, free tier...).
    """

    name: str
    provider: str
    region: str | None
    requests: int
    duration_ms: float
    lines: tuple[EstimateLine, ...]
    prices_date: str
    prices_source: str
    assumptions: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        """The sum of every priced line, in USD a month."""
        return sum(line.monthly_usd for line in self.lines if line.monthly_usd is not None)

    @property
    def unpriced(self) -> list[str]:
        """The items with no price (left out of :attr:`total`)."""
        return [line.item for line in self.lines if line.monthly_usd is None]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per line."""
        return [line.row() for line in self.lines]

    def total_text(self) -> str:
        """``$12.34 / month`` and what it leaves out."""
        text = f"{money(self.total)} / month"
        if self.unpriced:
            text += f" (not included: {', '.join(self.unpriced)})"
        return text

    def footer(self) -> str:
        """The prices' date and source, printed beside every set of figures."""
        return f"prices as of {self.prices_date}: {self.prices_source}"

    def text(self) -> str:
        """The estimate as a text table, its total, assumptions and the prices' date and source."""
        head = (f"estimate for {self.name} on {self.provider}" + (f" ({self.region})" if self.region else "")
                + f": {self.requests:,} requests a month, {self.duration_ms:g} ms each")
        cells = [[line.item, "-" if line.quantity is None else _quantity(line.quantity, line.unit), line.price,
                  "no price" if line.monthly_usd is None and "no price" in line.price else
                  ("-" if line.monthly_usd is None else money(line.monthly_usd)), line.note] for line in self.lines]
        titles = ["ITEM", "QUANTITY", "PRICE", "MONTHLY", "NOTE"]
        widths = [max(len(t), *(len(row[i]) for row in cells)) for i, t in enumerate(titles)]
        table = ["  ".join(t.ljust(w) for t, w in zip(titles, widths)).rstrip()]
        table += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
        parts = [head, *table, f"total: {self.total_text()}"]
        parts += [f"assumes: {a}" for a in self.assumptions]
        parts.append(self.footer())
        return "\n".join(parts)

    def to_frame(self) -> Any:
        """The lines as a pandas DataFrame (imported here), with the prices' date and source in ``attrs``."""
        import pandas as pd

        frame = pd.DataFrame(self.rows(), columns=["item", "quantity", "unit", "price", "monthly_usd", "note"])
        frame.attrs.update({"total_usd": self.total, "prices_date": self.prices_date, "prices_source": self.prices_source})
        return frame

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                line.item, "-" if line.quantity is None else _quantity(line.quantity, line.unit), line.price,
                "no price" if line.monthly_usd is None and "no price" in line.price else
                ("-" if line.monthly_usd is None else money(line.monthly_usd)), line.note)) + "</tr>"
            for line in self.lines)
        head = "".join(f"<th>{t}</th>" for t in ("item", "quantity", "price", "monthly", "note"))
        notes = "".join(f"<div>assumes: {html.escape(a)}</div>" for a in self.assumptions)
        return (f"<div><b>{html.escape(self.name)}</b> on {html.escape(self.provider)}: "
                f"<b>{html.escape(self.total_text())}</b><table><tr>{head}</tr>{rows}</table>{notes}"
                f"<div><small>{html.escape(self.footer())}</small></div></div>")

    def __str__(self) -> str:
        return self.text()


def money(value: float) -> str:
    """USD as text: cents from $1 up, four decimals below."""
    if value == 0:
        return "$0.00"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _rate(value: float) -> str:
    """A unit price as text, without exponent: ``0.20``, ``0.0000166667``."""
    return f"{value:.2f}" if value >= 0.01 else f"{value:.10f}".rstrip("0")


def _quantity(value: float, unit: str) -> str:
    number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{number} {unit}"


# prices -------------------------------------------------------------------
def load_prices(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The shipped price table, with ``path`` (JSON or YAML) merged over it.

    Args:
        path: a user's price file (``--prices``); any part of the table may be
            given, e.g. only ``models: {my-model: {input_per_million: 1, output_per_million: 2}}``.

    Returns:
        The table; its ``date`` and ``source`` say where the figures come from.

    Raises:
        ConfigError: the file is missing or is not a JSON/YAML mapping.
    """
    shipped = json.loads(resources.files("weave_nb.core").joinpath("prices.json").read_text(encoding="utf-8"))
    if path is None:
        return shipped
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the price file {p.name!r}: {exc.strerror or exc}",
                          "give --prices a JSON or YAML file you can read") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error: one clear message
        raise ConfigError(f"the price file {p.name!r} is not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                          f"{str(exc).splitlines()[0][:200]}", "fix the file; weave_nb/core/prices.json shows the shape") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the price file {p.name!r} is not a mapping", "write it as the shipped table is: {\"models\": {...}, ...}")
    merged = _merge(shipped, data)
    merged["date"] = str(data.get("date") or f"{shipped['date']} (shipped), overridden by {p.name} (undated)")
    merged["source"] = str(data.get("source") or f"{p.name} over the shipped table ({shipped['source']})")
    return merged


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def model_price(model: str, prices: Mapping[str, Any]) -> tuple[str, dict[str, float]] | None:
    """The per-million-token prices of ``model``, or ``None`` when the table has none.

    ``openai:``/``anthropic:`` prefixes are dropped; ``mock`` and ``mock:...``
    models run offline and cost nothing; a dated name (``claude-3-opus-20240229``)
    falls back to its undated one.

    Returns:
        ``(table name, {"input_per_million", "output_per_million"})`` or ``None``.
    """
    table = prices.get("models") or {}
    name = model.strip()
    if name == "mock" or name.startswith("mock:"):
        return ("mock", table.get("mock") or {"input_per_million": 0.0, "output_per_million": 0.0})
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    for candidate in (name, name.lower(), _DATE_SUFFIX.sub("", name.lower())):
        entry = table.get(candidate)
        if isinstance(entry, Mapping) and "input_per_million" in entry and "output_per_million" in entry:
            return candidate, {"input_per_million": float(entry["input_per_million"]),
                               "output_per_million": float(entry["output_per_million"])}
    return None


# compute ------------------------------------------------------------------
def compute_lines(provider: str, region: str | None, memory_mb: int, requests: int, duration_ms: float,
                  prices: Mapping[str, Any], architecture: str = "x86_64", endpoint: str = "url",
                  free_tier: bool = False) -> list[EstimateLine]:
    """The compute, request and endpoint lines of one month.

    Args:
        provider: ``aws``, ``gcp``, ``docker``, ``local`` or a plug-in (not priced).
        region: the region the prices are looked up for.
        memory_mb: the function's memory.
        requests: requests a month.
        duration_ms: how long one request runs.
        prices: the table (:func:`load_prices`).
        architecture: aws: ``x86_64`` or ``arm64``.
        endpoint: aws: ``url`` (Function URL), ``api`` (API Gateway HTTP API) or ``none``.
        free_tier: subtract the account's monthly free tier.
    """
    if provider == "aws":
        return _lambda_lines(region, memory_mb, requests, duration_ms, prices, architecture, endpoint, free_tier)
    if provider == "gcp":
        return _gcf_lines(region, memory_mb, requests, duration_ms, prices, free_tier)
    if provider in ("docker", "local"):
        return [EstimateLine("compute", None, "", "your machine", None, "runs on your own machine: not priced")]
    return [EstimateLine("compute", None, "", "no price", None, f"the table has no prices for provider {provider!r}")]


def _lambda_lines(region: str | None, memory_mb: int, requests: int, duration_ms: float, prices: Mapping[str, Any],
                  architecture: str, endpoint: str, free_tier: bool) -> list[EstimateLine]:
    table = (prices.get("aws") or {}).get("lambda") or {}
    billed_s = math.ceil(duration_ms / table.get("billing_granularity_ms", 1)) * table.get("billing_granularity_ms", 1) / 1000
    gb_seconds = requests * billed_s * memory_mb / 1024
    lines = []
    if region not in (table.get("regions") or []):
        why = f"the table has no Lambda prices for region {region!r}"
        lines += [EstimateLine("compute", gb_seconds, "GB-s", "no price", None, why),
                  EstimateLine("requests", requests, "requests", "no price", None, why)]
    else:
        rate = float(table["gb_second"][architecture])
        free = table.get("free_tier") or {}
        billable = max(0.0, gb_seconds - free.get("gb_seconds", 0)) if free_tier else gb_seconds
        billable_requests = max(0, requests - free.get("requests", 0)) if free_tier else requests
        note = f"{memory_mb} MB x {billed_s:g} s x {requests:,} ({architecture})"
        if free_tier:
            note += f", less {free.get('gb_seconds', 0):,} free GB-s"
        lines.append(EstimateLine("compute", gb_seconds, "GB-s", f"${_rate(rate)} / GB-s", billable * rate, note))
        per_m = float(table["request_per_million"])
        lines.append(EstimateLine("requests", requests, "requests", f"${_rate(per_m)} / 1M requests",
                                  billable_requests / 1e6 * per_m,
                                  f"less {free.get('requests', 0):,} free requests" if free_tier else ""))
    if endpoint == "url":
        lines.append(EstimateLine("endpoint", requests, "requests", "$0 (Function URL)", 0.0, "Function URLs cost nothing extra"))
    elif endpoint == "api":
        api = (prices.get("aws") or {}).get("api_gateway_http") or {}
        if region in (api.get("regions") or []):
            per_m = float(api["request_per_million"])
            lines.append(EstimateLine("endpoint", requests, "requests", f"${_rate(per_m)} / 1M requests (API Gateway HTTP API)",
                                      requests / 1e6 * per_m, api.get("note", "")))
        else:
            lines.append(EstimateLine("endpoint", requests, "requests", "no price", None,
                                      f"the table has no API Gateway HTTP API prices for region {region!r}"))
    return lines


def _gcf_lines(region: str | None, memory_mb: int, requests: int, duration_ms: float, prices: Mapping[str, Any],
               free_tier: bool) -> list[EstimateLine]:
    table = (prices.get("gcp") or {}).get("functions_gen2") or {}
    step = table.get("billing_granularity_ms", 100)
    billed_s = math.ceil(duration_ms / step) * step / 1000
    vcpu = (table.get("cpu_by_memory_mb") or {}).get(str(memory_mb))
    gib = memory_mb / 1024
    tier = next((name for name, regions in (table.get("regions") or {}).items() if region in regions), None)
    gib_seconds = requests * billed_s * gib
    if tier is None or vcpu is None:
        why = (f"the table has no Cloud Functions prices for region {region!r}" if tier is None
               else f"the table has no vCPU size for {memory_mb} MB")
        return [EstimateLine("compute (vCPU)", None if vcpu is None else requests * billed_s * vcpu, "vCPU-s", "no price", None, why),
                EstimateLine("compute (memory)", gib_seconds, "GiB-s", "no price", None, why),
                EstimateLine("requests", requests, "requests", "no price", None, why)]
    vcpu_seconds = requests * billed_s * float(vcpu)
    free = table.get("free_tier") or {}
    cpu_rate, mem_rate = float(table["vcpu_second"][tier]), float(table["gib_second"][tier])
    per_m = float(table["request_per_million"])
    cpu_bill = max(0.0, vcpu_seconds - free.get("vcpu_seconds", 0)) if free_tier else vcpu_seconds
    mem_bill = max(0.0, gib_seconds - free.get("gib_seconds", 0)) if free_tier else gib_seconds
    req_bill = max(0, requests - free.get("requests", 0)) if free_tier else requests
    less = " after the free tier" if free_tier else ""
    return [
        EstimateLine("compute (vCPU)", vcpu_seconds, "vCPU-s", f"${_rate(cpu_rate)} / vCPU-s ({tier})", cpu_bill * cpu_rate,
                     f"{vcpu:g} vCPU for {memory_mb} MB x {billed_s:g} s x {requests:,}{less}"),
        EstimateLine("compute (memory)", gib_seconds, "GiB-s", f"${_rate(mem_rate)} / GiB-s ({tier})", mem_bill * mem_rate,
                     f"{gib:g} GiB x {billed_s:g} s x {requests:,}{less}"),
        EstimateLine("requests", requests, "requests", f"${_rate(per_m)} / 1M requests", req_bill / 1e6 * per_m, less.strip()),
    ]


# models -------------------------------------------------------------------
def parse_tokens_per_call(text: str | None) -> tuple[int, int] | None:
    """``"800,300"`` -> ``(800, 300)``: input and output tokens of one model call.

    Raises:
        ConfigError: not two whole numbers of at least 0 separated by a comma.
    """
    if text is None or text == "":
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2:
        text = f"{text[0]},{text[1]}"
    parts = str(text).split(",")
    try:
        values = tuple(int(p.strip()) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 0:
        raise ConfigError(f"--tokens-per-call {text!r} is not IN,OUT", "give input and output tokens per call, e.g. --tokens-per-call 800,300")
    return values[0], values[1]  # type: ignore[return-value]


def measure_tokens(spec: Any, weave: str | None, sample: str) -> dict[str, tuple[int, int]]:
    """Each agent's input and output tokens for one request, measured with the offline mock model.

    Runs the weave's agents in this process with the standard runtime
    (``WEAVE_MODEL_BACKEND=mock``, no API keys, nothing sent anywhere).

    Returns:
        agent name -> ``(prompt tokens, completion tokens)``, in execution order.
    """
    from ..runtime.engine import run_weave

    result = run_weave(spec.to_runtime_dict(), weave, sample, environ={"WEAVE_MODEL_BACKEND": "mock"})
    return {a["name"]: (int(a["tokens"]["prompt"]), int(a["tokens"]["completion"])) for a in result["agents"]}


def model_lines(agents: list[tuple[str, str, int, int]], requests: int, prices: Mapping[str, Any], how: str) -> list[EstimateLine]:
    """One line per agent: its model's price per token times the tokens of a month.

    Args:
        agents: ``(agent, model, input tokens per call, output tokens per call)``.
        requests: requests a month (each runs every agent once).
        prices: the table.
        how: how the tokens were found (shown in each line's note).
    """
    lines = []
    for agent, model, tin, tout in agents:
        month_in, month_out = requests * tin, requests * tout
        found = model_price(model, prices)
        quantity = float(month_in + month_out)
        note = f"{tin:,} in + {tout:,} out per call ({how})"
        if found is None:
            lines.append(EstimateLine(f"model {agent} ({model})", quantity, "tokens", "no price", None,
                                      f"{note}; the table has no price for {model!r}"))
            continue
        _, rate = found
        cost = month_in / 1e6 * rate["input_per_million"] + month_out / 1e6 * rate["output_per_million"]
        lines.append(EstimateLine(f"model {agent} ({model})", quantity, "tokens",
                                  f"${rate['input_per_million']:g} in / ${rate['output_per_million']:g} out per 1M tokens",
                                  cost, note))
    return lines


# the whole estimate -------------------------------------------------------
def estimate_deployment(values: Mapping[str, Any], requests: int, duration_ms: float | None = None,
                        tokens_per_call: Any = None, prices: str | os.PathLike[str] | None = None,
                        free_tier: bool = False, weave: str | None = None, sample: str = "hello",
                        manager: Any = None) -> Estimate:
    """Estimate a month of a deployment, without credentials or any remote call.

    Args:
        values: deployment settings as a deploy takes them (name, provider, weave_file, memory_mb, region, options...).
        requests: requests a month.
        duration_ms: how long one request runs (default 1000 ms).
        tokens_per_call: ``"IN,OUT"`` tokens of each model call; default: measured with the mock model.
        prices: a price file merged over the shipped table.
        free_tier: subtract the account's monthly free tier.
        weave: which weave of the file a request runs (default: the only one).
        sample: the input used to measure tokens.
        manager: the DeploymentManager (default: a new one).

    Raises:
        ConfigError, WeaveSpecError: bad input.
    """
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
        raise ConfigError(f"requests must be a whole number of at least 0, got {requests!r}", "e.g. --requests 100000 (a month)")
    duration = DEFAULT_DURATION_MS if duration_ms is None else float(duration_ms)
    if not duration > 0:
        raise ConfigError(f"duration must be more than 0 ms, got {duration_ms!r}", "e.g. --duration-ms 1500")
    given = parse_tokens_per_call(tokens_per_call)
    table = load_prices(prices)
    if manager is None:
        from .manager import DeploymentManager

        manager = DeploymentManager()
    config, spec = manager.configure(dict(values), secret_values=False)  # prices need no secret values
    provider = config.provider
    region = config.region
    assumptions = []
    architecture, endpoint = "x86_64", "url"
    if provider == "aws":
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            region = "us-east-1"
            assumptions.append("region us-east-1 (none was given)")
        config = config.model_copy(update={"region": region})
    elif provider == "gcp":
        region = region or "us-central1"
    if provider in ("aws", "gcp"):
        prov = manager.provider(provider)
        prov.validate_config(config)
        opts = prov.options(config)
        architecture = getattr(opts, "architecture", architecture)
        endpoint = getattr(opts, "endpoint", endpoint)
    memory = config.memory_mb or DEFAULT_MEMORY.get(provider, 0)
    if provider in DEFAULT_MEMORY:
        assumptions.append(f"{memory} MB memory" + ("" if config.memory_mb else " (the default)")
                           + (f", {architecture}" if provider == "aws" else ""))
    assumptions.append("free tier subtracted" if free_tier else "free tier not subtracted (pass --free-tier to subtract it)")
    lines = compute_lines(provider, region, memory, requests, duration, table, architecture, endpoint, free_tier)
    weave_name = weave or spec.default_weave
    if weave_name is None:
        raise ConfigError(f"the weave file has several weaves ({', '.join(spec.weaves)})", "name the one a request runs: --weave NAME")
    order = spec.execution_order(weave_name)
    if given is not None:
        per_agent = {a: given for a in order}
        how = "given"
    else:
        per_agent = measure_tokens(spec, weave_name, sample)
        how = "measured with the mock model: a baseline"
    agents = [(a, spec.agents[a].model, *per_agent[a]) for a in order]
    lines += model_lines(agents, requests, table, how)
    return Estimate(config.name, provider, region if provider in ("aws", "gcp") else None, requests, duration,
                    tuple(lines), str(table.get("date")), str(table.get("source")), tuple(assumptions))
