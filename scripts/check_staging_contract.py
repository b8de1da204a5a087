#!/usr/bin/env python3
"""The contract production depends on, read from the staging template and the staging buildspec.

ecr-promote finds a release's staging image by the tag equal to the release's full commit hash. So:
  1. the staging pipeline's build gets the revision of its Source action (its input artifact is that
     action's output, and it receives that action's CommitId as SOURCE_COMMIT_ID), and a push to the branch
     starts the pipeline;
  2. the build pushes exactly STAGING_REPOSITORY_URI:CODEBUILD_RESOLVED_SOURCE_VERSION, STAGING_REPOSITORY_URI
     is the template's repository (or, when the stack adopts one that exists, CreatesRepository false, the
     repository of the same name in the stack's account and region), and before the push the build refuses a revision that is not a full
     hash or differs from SOURCE_COMMIT_ID; the deploy file names the image pushed;
  3. the repository's lifecycle policy never expires a tagged image younger than KeepCommitImagesDays: every
     rule that selects tagged images counts days since the push, with that parameter as the count.
Exit 1 with what to fix when any of it does not hold.
"""

import json
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn_template import REPO, CheckFailed, load, resolve, run  # noqa: E402

TEMPLATE = "deploy/staging-pipeline.yml"
BUILDSPEC = "deploy/staging-buildspec.yml"
KEEP_PARAMETER = "KeepCommitImagesDays"
# The image reference the build must push, after its shell variables are expanded.
PUSHED = "${STAGING_REPOSITORY_URI}:${CODEBUILD_RESOLVED_SOURCE_VERSION}"
# The condition under which the stack creates the staging repository rather than adopting one.
CREATES = "CreatesRepository"
COMMIT = "${CODEBUILD_RESOLVED_SOURCE_VERSION}"


def resources_of_type(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def one(found: dict, what: str) -> tuple:
    if len(found) != 1:
        raise CheckFailed(f"{TEMPLATE}: expected one {what}, found {sorted(found) or 'none'}")
    return next(iter(found.items()))


def actions(pipeline, provider):
    return [a for stage in pipeline["Properties"]["Stages"] for a in stage["Actions"]
            if a["ActionTypeId"]["Provider"] == provider]


def check_pipeline(template) -> str:
    """Point 1, and the project's repository; returns the repository's logical name."""
    # Conditions only change encryption, replication and whether the stack creates the repository here; take
    # the template without the first two, creating it (the adopting branch is checked below).
    conditions = {name: name == CREATES for name in template.get("Conditions", {})}
    _, pipeline = one(resources_of_type(template, "AWS::CodePipeline::Pipeline"), "pipeline")
    pipeline = resolve(pipeline, conditions)
    sources = actions(pipeline, "CodeStarSourceConnection")
    builds = actions(pipeline, "CodeBuild")
    if len(sources) != 1 or len(builds) != 1:
        raise CheckFailed(f"{TEMPLATE}: the pipeline needs one CodeStarSourceConnection action and one CodeBuild "
                          f"action, it has {len(sources)} and {len(builds)}")
    source, build = sources[0], builds[0]
    branch = source["Configuration"]["BranchName"]
    pushes = [p for t in pipeline["Properties"].get("Triggers", [])
              if t["GitConfiguration"].get("SourceActionName") == source["Name"]
              for p in t["GitConfiguration"].get("Push", [])]
    if not any(p.get("Branches", {}).get("Includes") == [branch] for p in pushes):
        raise CheckFailed(f"{TEMPLATE}: no push trigger on action {source['Name']} filtered on its branch "
                          f"{branch}: add Triggers → GitConfiguration → Push → Branches → Includes")
    source_output = [a["Name"] for a in source["OutputArtifacts"]]
    if [a["Name"] for a in build.get("InputArtifacts", [])] != source_output:
        raise CheckFailed(f"{TEMPLATE}: action {build['Name']} must take exactly {source_output}, the source "
                          "action's output: CODEBUILD_RESOLVED_SOURCE_VERSION is its input artifact's revision")
    namespace = source.get("Namespace")
    variables = json.loads(build["Configuration"].get("EnvironmentVariables", "[]"))
    passed = {v["name"]: v["value"] for v in variables}
    if not namespace or passed.get("SOURCE_COMMIT_ID") != f"#{{{namespace}.CommitId}}":
        raise CheckFailed(f"{TEMPLATE}: action {build['Name']} must pass SOURCE_COMMIT_ID = "
                          "#{<source action's Namespace>.CommitId}; it passes "
                          f"{passed.get('SOURCE_COMMIT_ID')!r} (Namespace {namespace!r})")
    project_name = build["Configuration"]["ProjectName"].get("Ref")
    project = resolve(template["Resources"][project_name], conditions)
    uri = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    repository = (uri.get("STAGING_REPOSITORY_URI") or {}).get("Fn::GetAtt", [None, None])
    if repository[1] != "RepositoryUri" or repository[0] not in resources_of_type(template, "AWS::ECR::Repository"):
        raise CheckFailed(f"{TEMPLATE}: the build project's STAGING_REPOSITORY_URI must be "
                          "!GetAtt <the staging repository>.RepositoryUri")
    created = template["Resources"][repository[0]]
    adopted = resolve(template["Resources"][project_name], {**conditions, CREATES: False})
    uri = {v["Name"]: v["Value"] for v in adopted["Properties"]["Environment"]["EnvironmentVariables"]}
    name = created["Properties"]["RepositoryName"].get("Ref")
    expected = {"Fn::Sub": f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{name}}}"}
    if created.get("Condition") != CREATES or uri.get("STAGING_REPOSITORY_URI") != expected:
        raise CheckFailed(f"{TEMPLATE}: the repository must have Condition {CREATES}, and without it the build "
                          f"project's STAGING_REPOSITORY_URI must be !Sub {expected['Fn::Sub']!r}, the "
                          "adopted repository of the same name")
    return repository[0]


def shell_lines(buildspec):
    for phase in ("install", "pre_build", "build", "post_build"):
        for command in (buildspec.get("phases", {}).get(phase) or {}).get("commands", []):
            yield from command.splitlines()


def check_buildspec():
    """Point 2."""
    buildspec = yaml.safe_load((REPO / BUILDSPEC).read_text())
    assigned = {}

    def expand(text):
        def one_variable(m):
            name = m.group(1) or m.group(2)
            return expand(assigned[name]) if name in assigned else "${" + name + "}"
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", one_variable, text)

    guards, pushed, lines = set(), [], list(shell_lines(buildspec))
    for i, line in enumerate(lines):
        line = line.strip()
        assignment = re.fullmatch(r"(\w+)=\"?([^\"]*)\"?", line)
        if assignment:
            assigned[assignment.group(1)] = assignment.group(2)
            continue
        expanded = expand(line)
        refuses = any(re.match(r"exit [1-9]", later.strip()) for later in lines[i + 1:i + 4])
        full_hash = re.fullmatch(r'if \[\[ ! "(.+)" =~ \^(.+)\$ \]\]; then', expanded)
        if full_hash and full_hash.group(1) == COMMIT and refuses:
            alternatives = re.fullmatch(r"\((.+)\)", full_hash.group(2))
            allowed = alternatives.group(1).split("|") if alternatives else [full_hash.group(2)]
            if set(allowed) <= {"[0-9a-f]{40}", "[0-9a-f]{64}"}:
                guards.add("full hash")
        differs = re.fullmatch(r'if \[\[ "(.+)" != "(.+)" \]\]; then', expanded)
        if differs and {differs.group(1), differs.group(2)} == {COMMIT, "${SOURCE_COMMIT_ID}"} and refuses:
            guards.add("source commit")
        push = re.fullmatch(r'docker push "?([^"]+)"?', line)
        if push:
            pushed.append(expand(push.group(1)))
            if pushed[-1] != PUSHED:
                break
            missing = {"full hash", "source commit"} - guards
            if missing:
                raise CheckFailed(f"{BUILDSPEC}: `{line}` comes before the build refuses a revision that is not "
                                  "a full commit hash (`if [[ ! \"$COMMIT\" =~ ^([0-9a-f]{40}|[0-9a-f]{64})$ ]]`) "
                                  "and one that differs from SOURCE_COMMIT_ID, each followed by `exit 1`")
        if "imagedefinitions.json" in line and ">" in line and PUSHED not in expanded:
            raise CheckFailed(f"{BUILDSPEC}: imagedefinitions.json does not name the image pushed ({PUSHED})")
    if not pushed or any(p != PUSHED for p in pushed):
        raise CheckFailed(f"{BUILDSPEC}: it must push {PUSHED} (the full commit hash of the pipeline's source "
                          f"revision); it pushes {pushed or 'nothing'}")


def check_lifecycle(template, repository: str):
    """Point 3."""
    parameter = template["Parameters"].get(KEEP_PARAMETER)
    if not parameter or parameter.get("Type") != "Number" or int(parameter.get("MinValue", 0)) < 1:
        raise CheckFailed(f"{TEMPLATE}: parameter {KEEP_PARAMETER} must be a Number with MinValue 1 or more")
    text = template["Resources"][repository]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    if not isinstance(text, dict) or not isinstance(text.get("Fn::Sub"), str):
        raise CheckFailed(f"{TEMPLATE}: {repository}'s LifecyclePolicyText must be a !Sub of the JSON policy")
    # Each parameter becomes a number no literal would be, so that a rule's count shows where it came from.
    numbers = {name: str(900000001 + i) for i, name in enumerate(template["Parameters"])}
    names = {int(number): f"${{{name}}}" for name, number in numbers.items()}
    policy = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: numbers.get(m.group(1), m.group(0)), text["Fn::Sub"]))
    keep = int(numbers[KEEP_PARAMETER])
    untagged_expire = False
    for rule in policy["rules"]:
        selection = rule["selection"]
        if selection["tagStatus"] == "untagged":
            untagged_expire |= rule["action"]["type"] == "expire"
            continue
        if (selection.get("countType"), selection.get("countUnit"), selection.get("countNumber")) != \
                ("sinceImagePushed", "days", keep):
            raise CheckFailed(f"{TEMPLATE}: lifecycle rule {rule['rulePriority']} selects tagged images by "
                              f"{selection.get('countType')} "
                              f"{names.get(selection.get('countNumber'), selection.get('countNumber'))} "
                              f"{selection.get('countUnit', '')}: a rule on tagged images may only count days "
                              f"since the push, with ${{{KEEP_PARAMETER}}}, or it can expire a commit image "
                              "before it is released")
    if not untagged_expire:
        raise CheckFailed(f"{TEMPLATE}: no lifecycle rule expires untagged images")


def check() -> str:
    template = load(TEMPLATE)
    repository = check_pipeline(template)
    check_buildspec()
    check_lifecycle(template, repository)
    return f"the staging build pushes {PUSHED}, guarded; tagged images live {KEEP_PARAMETER} days at least"


if __name__ == "__main__":
    sys.exit(run("check_staging_contract", check))
