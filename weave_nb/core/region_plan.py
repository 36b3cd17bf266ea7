"""The pieces of a deployment group's plan: region lists, member names, the combined plan, region-marked events.

See :mod:`weave_nb.core.regions` for how a group is deployed and recorded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .config import NAME_PATTERN
from .errors import ConfigError
from .events import Done, LogLine, ProgressUpdate, Reporter, Sink, StepFinished, StepStarted, WarningEvent
from .plan import Plan

MAX_REGIONS = 10
EXAMPLE = "--region us-east-1,eu-west-1"


def parse_regions(value: Any) -> list[str] | None:
    """The regions of a group request, or ``None`` for a single region (or none).

    Args:
        value: ``"a,b"`` (a comma-separated list), a list or tuple of names, or a single region.

    Raises:
        ConfigError: an empty item, a region listed twice, or more than :data:`MAX_REGIONS`.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        text = str(value)
        if "," not in text:
            return None
        items = text.split(",")
    regions = [item.strip() for item in items]
    if not regions or any(not r for r in regions):
        raise ConfigError(f"the region list {','.join(regions)!r} has an empty item",
                          f"write the regions comma-separated without gaps, e.g. {EXAMPLE}")
    seen: set[str] = set()
    for region in regions:
        if region in seen:
            raise ConfigError(f"region {region} is listed twice", "list each region once")
        seen.add(region)
    if len(regions) > MAX_REGIONS:
        raise ConfigError(f"{len(regions)} regions were given; a deployment group has at most {MAX_REGIONS}",
                          "deploy the weave as several groups under different names")
    return regions


def member_name(group: str, region: str) -> str:
    """The deployment name of ``group``'s member in ``region`` (``demo`` in ``eu-west-1``: ``demo-eu-west-1``).

    Raises:
        ConfigError: the member name would not be a valid deployment name (too long, odd characters).
    """
    name = f"{group}-{region}"
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"cannot deploy {group!r} to {region!r}: each region is a deployment named <name>-<region>, "
            f"and {name!r} is not a valid deployment name (a letter, then letters, digits, '-' or '_', at most 63)",
            "choose a shorter deployment name (or check the region's spelling)",
        )
    return name


class RegionReporter(Reporter):
    """A member's reporter: its events go to the group's reporter with the step keys and texts marked by region."""

    def __init__(self, parent: Reporter, region: str) -> None:
        super().__init__(sink=parent.sink, total=parent.total, clock=parent.clock)
        self.parent = parent
        self.region = region

    def _key(self, step: str | None) -> str | None:
        return None if step is None else f"{self.region}/{step}"

    def emit(self, event: Any) -> None:
        if isinstance(event, StepStarted):
            event = dataclasses.replace(event, step=self._key(event.step), description=f"[{self.region}] {event.description}")
        elif isinstance(event, StepFinished):
            event = dataclasses.replace(event, step=self._key(event.step))
        elif isinstance(event, LogLine):
            event = dataclasses.replace(event, text=f"[{self.region}] {event.text}", step=self._key(event.step))
        elif isinstance(event, WarningEvent):
            event = dataclasses.replace(event, text=f"[{self.region}] {event.text}")
        elif isinstance(event, ProgressUpdate):
            return  # the group's reporter reports progress over every region's steps
        self.parent.emit(event)

    def start(self, step: str, description: str) -> float:
        return self.parent.start(f"{self.region}/{step}", f"[{self.region}] {description}")

    def finish(self, step: str, started: float, outcome: str = "ok", detail: str = "") -> None:
        self.parent.finish(f"{self.region}/{step}", started, outcome, detail)


def region_sink(sink: Sink, region: str) -> Sink:
    """``sink`` for one member's own operation (an undeploy): keys and texts marked by region, its Done as a log line."""
    reporter = RegionReporter(Reporter(sink), region)

    def send(event: Any) -> None:
        if isinstance(event, Done):
            event = LogLine(text=("" if event.ok else "failed: ") + (event.message or ""))
        reporter.emit(event)

    return send


def combine(group: str, provider: str, plans: Mapping[str, Plan], operation: str = "deploy") -> Plan:
    """One plan for the group: each region's steps, keys prefixed ``<region>/`` and resources ``[<region>]``."""
    steps, notes, observed = [], [], {}
    for region, plan in plans.items():
        steps += [s.model_copy(update={"key": f"{region}/{s.key}", "resource": f"[{region}] {s.resource}"}) for s in plan.steps]
        notes += [f"[{region}] {n}" for n in plan.notes]
        observed[region] = plan.observed
    notes.append(f"deployment group {group}: {len(plans)} region(s), {', '.join(plans)}; "
                 "a failure in one region undoes only that region's steps")
    return Plan(provider=provider, name=group, operation=operation, steps=steps, notes=notes,  # type: ignore[arg-type]
                observed={"regions": observed})
