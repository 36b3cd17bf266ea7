"""The format-owning tools the export tests run: checkov (in its own virtualenv) and cfn-lint.

checkov pins many packages that conflict with moto and boto, so ``scripts/test.sh``
installs it into its own virtualenv, ``$WEAVE_TOOLS_VENV`` (default
``~/.cache/weave-nb/tools-venv``); :func:`checkov_path` finds it there (or on PATH).

:func:`run_checkov` runs it offline on a folder and returns the failed checks.
checkov's ``terraform_json`` framework does not read skip comments yet, so for
``.tf.json`` files this applies checkov's own rule for ``.tf`` files: a
``checkov:skip=ID:reason`` comment (here a ``"//"`` key, which Terraform ignores)
on a line inside the failing resource's line range skips that check there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# the regular expression checkov uses for skip comments (checkov.common.comment.enum.COMMENT_REGEX)
SKIP = re.compile(r"(checkov:skip=) *([A-Za-z_\d-]+(?:,[A-Za-z_\d-]+)*)?(:[^\n]*)?")


def tools_venv() -> Path:
    """Where scripts/test.sh installs checkov."""
    return Path(os.environ.get("WEAVE_TOOLS_VENV") or Path.home() / ".cache" / "weave-nb" / "tools-venv")


def checkov_path() -> str | None:
    """The checkov executable: the tools virtualenv's, else one on PATH, else None."""
    found = tools_venv() / "bin" / "checkov"
    return str(found) if found.exists() else shutil.which("checkov")


def require_checkov() -> str:
    """checkov's path; in CI (CI=true) a missing checkov fails the test, elsewhere it skips it."""
    path = checkov_path()
    if path is None:
        message = f"checkov is not installed: bash scripts/test.sh installs it into {tools_venv()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass(frozen=True)
class Finding:
    check_id: str
    resource: str
    file: str
    lines: tuple[int, int]
    name: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file}:{self.lines[0]}-{self.lines[1]}): {self.name}"


@dataclass
class CheckovReport:
    passed: int
    failed: list[Finding]
    skipped: list[tuple[str, str, str]]  # (check id, resource, reason)
    parsing_errors: int
    resources: int


def _inline_skips(path: Path, lines: tuple[int, int]) -> dict[str, str]:
    """The checks skipped by comments strictly inside ``lines`` of ``path`` (checkov's rule for .tf files)."""
    out: dict[str, str] = {}
    text = path.read_text().splitlines()
    for number in range(lines[0] + 1, lines[1]):
        match = SKIP.search(text[number - 1]) if number - 1 < len(text) else None
        if match and match.group(2):
            for cid in match.group(2).split(","):
                out[cid.strip()] = (match.group(3) or ":").strip(':" ,')
    return out


def run_checkov(directory: str | os.PathLike[str], framework: str, timeout: float = 600) -> CheckovReport:
    """Run checkov on ``directory`` with ``framework`` (cloudformation, terraform_json, kubernetes...) offline.

    Returns:
        The report: failed checks (after inline skips), skipped ones with their reasons, counts.
    """
    exe = require_checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([exe, "-d", str(directory), "--framework", framework, "-o", "json", "--skip-download"],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise AssertionError(f"checkov did not run (exit {done.returncode}): {done.stderr[-2000:]}")
    data = json.loads(done.stdout)
    reports = data if isinstance(data, list) else [data]
    report = CheckovReport(0, [], [], 0, 0)
    for part in reports:
        summary = part.get("summary", part)
        report.passed += summary.get("passed", 0)
        report.parsing_errors += summary.get("parsing_errors", 0)
        report.resources += summary.get("resource_count", 0)
        results = part.get("results", {})
        for c in results.get("skipped_checks", []):
            report.skipped.append((c["check_id"], c["resource"], c.get("check_result", {}).get("suppress_comment", "")))
        for c in results.get("failed_checks", []):
            lines = tuple(c.get("file_line_range") or (0, 0))
            finding = Finding(c["check_id"], c["resource"], c["file_path"], lines, c["check_name"])  # type: ignore[arg-type]
            if framework == "terraform_json":
                path = Path(directory) / c["file_path"].lstrip("/")
                reason = _inline_skips(path, lines).get(c["check_id"])
                if reason is not None:
                    report.skipped.append((c["check_id"], c["resource"], reason))
                    continue
            report.failed.append(finding)
    return report


def run_cfn_lint(path: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """cfn-lint on one template (the dev extra installs it)."""
    exe = shutil.which("cfn-lint")
    cmd = [exe] if exe else ["python3", "-m", "cfnlint"]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=300)
