"""action.yml, the code, the README and docs/contract.md say the same thing (the
contract's Inputs and Outputs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from halt_rollout.inputs import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_STORE_API_URL,
    DEFAULT_TIMEOUT_SECONDS,
    INPUT_NAMES,
)
from halt_rollout.step_outputs import OUTPUT_NAMES

from .conftest import RunAction

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "docs" / "contract.md"
_ROW = re.compile(r"^\| `([a-z-]+)` \|(.*)$", re.M)


def action_yml() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def table(markdown: str, heading: str) -> dict[str, list[str]]:
    """The rows of the table under `## heading`: first-column name → the other cells."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {
        name: [cell.strip() for cell in rest.rstrip("|").split("|")]
        for name, rest in _ROW.findall(section)
    }


def test_action_yml_declares_exactly_the_inputs_the_code_reads() -> None:
    assert list(action_yml()["inputs"]) == list(INPUT_NAMES)


def test_action_yml_declares_exactly_the_outputs_the_code_writes() -> None:
    assert list(action_yml()["outputs"]) == list(OUTPUT_NAMES)


def test_action_yml_is_a_docker_action_with_defaults_matching_the_code() -> None:
    action = action_yml()
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}
    assert action["branding"]["icon"] == "stop-circle"
    inputs = action["inputs"]
    assert inputs["dry-run"]["default"] == "false"
    assert float(inputs["timeout-seconds"]["default"]) == DEFAULT_TIMEOUT_SECONDS
    assert inputs["store-api-url"]["default"] == DEFAULT_STORE_API_URL
    assert inputs["authority-host"]["default"] == DEFAULT_AUTHORITY_HOST
    assert inputs["tenant-id"]["required"] is True
    assert inputs["client-id"]["required"] is True
    for name, spec in inputs.items():
        assert len(spec["description"]) > 30, name
    for name, spec in action["outputs"].items():
        assert len(spec["description"]) > 20, name


def test_action_yml_matches_the_contract() -> None:
    contract = CONTRACT.read_text(encoding="utf-8")
    inputs = table(contract, "Inputs (`action.yml`)")
    outputs = table(contract, "Outputs")
    action = action_yml()
    assert list(action["inputs"]) == list(inputs)
    assert list(action["outputs"]) == list(outputs)
    for name, (required, default, _meaning) in inputs.items():
        declared = action["inputs"][name]
        assert declared.get("required", False) is (required == "yes"), name
        if default.startswith("`"):
            assert declared["default"] == default.strip("`"), name


def test_readme_tables_match_action_yml() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    action = action_yml()
    assert list(table(readme, "Inputs")) == list(action["inputs"])
    assert list(table(readme, "Outputs")) == list(action["outputs"])
    for name, (_required, default, _meaning) in table(readme, "Inputs").items():
        if default.startswith("`"):
            assert action["inputs"][name]["default"] == default.strip("`"), name


def test_a_run_writes_every_declared_output(action: RunAction) -> None:
    run = action()
    assert set(run.outputs) == set(action_yml()["outputs"])
    failed = action({"app-id": "not/valid"})
    assert set(failed.outputs) == set(action_yml()["outputs"])
    assert failed.outputs["result"] == "failed"
