"""What the checks beside this file share: reading the CloudFormation templates under deploy/, and reporting.

cfn-lint's decoder reads the short-form tags (!Sub, !If, !Ref …) into their long form; `resolve` then takes
one branch of every Fn::If for a given set of condition values and drops AWS::NoValue, so that a check sees
the template as CloudFormation would create it under those parameters.
"""

import sys
from pathlib import Path

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parent.parent


class CheckFailed(Exception):
    """A contract does not hold; the message names the file and what to change."""


def run(name: str, check) -> int:
    """Runs `check`, which returns a one-line summary or raises CheckFailed; the exit code for the script."""
    try:
        summary = check()
    except CheckFailed as failure:
        print(f"{name}: {failure}", file=sys.stderr)
        return 1
    print(f"{name}: {summary}")
    return 0


def load(relative: str) -> dict:
    template, matches = decode(str(REPO / relative))
    if matches or template is None:
        raise CheckFailed(f"{relative}: cannot be read as a template: {matches}")
    return template


_NO_VALUE = object()


def resolve(node, conditions: dict):
    """The node with every Fn::If decided by `conditions` (condition name → bool) and AWS::NoValue removed."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, if_true, if_false = node["Fn::If"]
            if name not in conditions:
                raise CheckFailed(f"condition {name} is used but the check gives it no value")
            return resolve(if_true if conditions[name] else if_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        resolved = {key: resolve(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(i, conditions) for i in node) if item is not _NO_VALUE]
    return node


def resource(template: dict, relative: str, name: str, conditions: dict) -> dict:
    try:
        found = template["Resources"][name]
    except KeyError:
        raise CheckFailed(f"{relative}: no resource {name}") from None
    return resolve(found, conditions)
