"""Validation of a pipeline definition: stage graph, steps, variables, triggers.

Stage and step names appear in log URLs (/executions/{id}/logs/{stage}/{step}), so they are
limited to URL-safe characters.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

from shipyard.env.service import check_key
from shipyard.errors import FieldError, Invalid

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NAME_RULE = "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
TRIGGERS = ("push", "pull_request", "manual")
EXECUTORS = ("shell", "docker")
MAX_TIMEOUT_SECONDS = 24 * 3600
STEP_FIELDS = {"name", "command", "args", "environment", "timeout_seconds", "executor", "image"}
STAGE_FIELDS = {"name", "steps", "depends_on"}


def _env_problems(env: Any, where: str) -> list[FieldError]:
    if env is None:
        return []
    if not isinstance(env, dict):
        return [FieldError(where, "must be an object of NAME: value")]
    problems = []
    for key, value in env.items():
        bad = check_key(str(key), f"{where}.{key}")
        if bad:
            problems.append(bad)
        if not isinstance(value, str | int | float | bool):
            problems.append(FieldError(f"{where}.{key}", "must be a string"))
    return problems


def _step_problems(step: Any, where: str) -> list[FieldError]:
    if not isinstance(step, dict):
        return [FieldError(where, "must be an object with name and command")]
    problems = [
        FieldError(f"{where}.{k}", "is not a known field") for k in step if k not in STEP_FIELDS
    ]
    if not isinstance(step.get("name"), str) or not NAME_RE.match(step["name"]):
        problems.append(FieldError(f"{where}.name", NAME_RULE))
    if not isinstance(step.get("command"), str) or not step["command"].strip():
        problems.append(FieldError(f"{where}.command", "is required (a shell command)"))
    args = step.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        problems.append(FieldError(f"{where}.args", "must be a list of strings"))
    problems += _env_problems(step.get("environment"), f"{where}.environment")
    timeout = step.get("timeout_seconds")
    if timeout is not None and (
        not isinstance(timeout, int)
        or isinstance(timeout, bool)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        problems.append(
            FieldError(f"{where}.timeout_seconds", f"must be 1 to {MAX_TIMEOUT_SECONDS} seconds")
        )
    executor = step.get("executor", "shell")
    if executor not in EXECUTORS:
        problems.append(FieldError(f"{where}.executor", f"must be one of {', '.join(EXECUTORS)}"))
    if executor == "docker" and not isinstance(step.get("image"), str):
        problems.append(FieldError(f"{where}.image", "is required with the docker executor"))
    return problems


def validate_stages(stages: Any) -> list[FieldError]:
    """Every problem with the stages, each named by its field path."""
    if not isinstance(stages, list) or not stages:
        return [FieldError("stages", "At least one stage is required")]
    problems: list[FieldError] = []
    names: list[str] = []
    for i, stage in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            problems.append(FieldError(where, "must be an object with name and steps"))
            continue
        problems += [
            FieldError(f"{where}.{k}", "is not a known field")
            for k in stage
            if k not in STAGE_FIELDS
        ]
        name = stage.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(FieldError(f"{where}.name", NAME_RULE))
        elif name in names:
            problems.append(FieldError(f"{where}.name", f"stage {name!r} is defined twice"))
        names.append(name if isinstance(name, str) else "")
        steps = stage.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append(FieldError(f"{where}.steps", "At least one step is required"))
            continue
        step_names: set[str] = set()
        for j, step in enumerate(steps):
            problems += _step_problems(step, f"{where}.steps[{j}]")
            if isinstance(step, dict) and step.get("name") in step_names:
                problems.append(
                    FieldError(
                        f"{where}.steps[{j}].name", f"step {step['name']!r} is defined twice"
                    )
                )
            if isinstance(step, dict) and isinstance(step.get("name"), str):
                step_names.add(step["name"])
    graph: dict[str, set[str]] = {}
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            continue
        deps = stage.get("depends_on", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append(FieldError(f"stages[{i}].depends_on", "must be a list of stage names"))
            continue
        for k, dep in enumerate(deps):
            if dep not in names:
                problems.append(
                    FieldError(f"stages[{i}].depends_on[{k}]", f"unknown stage {dep!r}")
                )
        graph[str(stage.get("name"))] = set(deps)
    if not problems:
        try:
            tuple(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            problems.append(FieldError("stages", f"depends_on forms a cycle: {cycle}"))
    return problems


def validate_pipeline(name: Any, stages: Any, variables: Any, triggers: Any) -> None:
    problems: list[FieldError] = []
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(FieldError("name", NAME_RULE))
    problems += validate_stages(stages)
    problems += _env_problems(variables, "variables")
    if not isinstance(triggers, list) or not all(t in TRIGGERS for t in triggers):
        problems.append(
            FieldError("triggers", f"each trigger must be one of {', '.join(TRIGGERS)}")
        )
    if problems:
        raise Invalid("Invalid pipeline configuration", problems)


def normalise_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Defaults filled in, values as strings: what is stored and run."""
    out = []
    for stage in stages:
        out.append(
            {
                "name": stage["name"],
                "depends_on": list(stage.get("depends_on", [])),
                "steps": [
                    {
                        "name": step["name"],
                        "command": step["command"],
                        "args": list(step.get("args", [])),
                        "environment": {
                            k: str(v) for k, v in (step.get("environment") or {}).items()
                        },
                        **(
                            {"timeout_seconds": step["timeout_seconds"]}
                            if "timeout_seconds" in step
                            else {}
                        ),
                        **({"executor": step["executor"]} if "executor" in step else {}),
                        **({"image": step["image"]} if "image" in step else {}),
                    }
                    for step in stage["steps"]
                ],
            }
        )
    return out
