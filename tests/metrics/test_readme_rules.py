"""The README's Prometheus scrape config and alerting rules: valid, about metrics /metrics
really exposes, and (with promtool installed) firing on the series they should."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.servers import ROOT

RULES_TEST = Path(__file__).with_name("rules") / "readme_rules_test.yml"
EXPOSED = {
    "inbox_messages_received_total",
    "inbox_deliveries_rejected_total",
    "inbox_deliveries_rate_limited_total",
    "inbox_deliveries_duplicate_total",
    "inbox_forward_attempts_total",
    "inbox_messages_pending",
    "inbox_oldest_pending_seconds",
}


def readme_yaml() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    scrape, rules = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    return scrape, rules


def test_the_scrape_config_sends_the_bearer_token_to_metrics() -> None:
    scrape, _ = readme_yaml()
    [job] = yaml.safe_load(scrape)["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"


def test_the_alerting_rules_use_only_metrics_the_inbox_exposes() -> None:
    _, rules = readme_yaml()
    [group] = yaml.safe_load(rules)["groups"]
    assert len(group["rules"]) == 3
    for rule in group["rules"]:
        used = set(re.findall(r"\binbox_[a-z_]+", rule["expr"]))
        assert used, rule
        assert used <= EXPOSED, used - EXPOSED


def test_promtool_accepts_the_rules_and_they_fire_when_they_should(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    _, rules = readme_yaml()
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(RULES_TEST, tmp_path / "test.yml")
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "test.yml"]):
        result = subprocess.run(  # noqa: S603 - promtool with fixed arguments
            [promtool, *command], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
