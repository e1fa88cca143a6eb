#!/usr/bin/env python3
"""A stand-in for the `aws` CLI answering the calls infra/verify-isolation.sh makes.

simulate-custom-policy is answered by a small evaluator of Allow statements (action and resource wildcards,
policy variables, StringEquals / StringLike and their ForAllValues forms), enough for the connector-access
policy, so the script's cases run against the deployed policy text. FAKE_AWS_POLICY names the policy file,
FAKE_AWS_RESOURCES a JSON map of logical id to physical id.
"""

import fnmatch
import json
import os
import sys


def option(args, name):
    return args[args.index(name) + 1]


def options(args, name):
    start = args.index(name) + 1
    values = []
    for arg in args[start:]:
        if arg.startswith("--"):
            break
        values.append(arg)
    return values


def context(entries):
    keys = {}
    for entry in entries:
        fields = dict(part.split("=", 1) for part in entry.split(","))
        keys[fields["ContextKeyName"]] = fields["ContextKeyValues"].split(";")
    return keys


def resolve(text, keys):
    for name, values in keys.items():
        text = text.replace("${" + name + "}", values[0])
    return text


def condition_holds(condition, keys):
    for operator, tests in condition.items():
        for key, expected in tests.items():
            expected = [resolve(e, keys) for e in (expected if isinstance(expected, list) else [expected])]
            actual = keys.get(key)
            if actual is None:
                return False
            match = fnmatch.fnmatchcase if "StringLike" in operator else str.__eq__
            if operator.startswith("ForAllValues:"):
                ok = all(any(match(a, e) for e in expected) for a in actual)
            else:
                ok = any(match(a, e) for a in actual for e in expected)
            if not ok:
                return False
    return True


def simulate(args):
    with open(option(args, "--policy-input-list").removeprefix("file://")) as f:
        policy = json.load(f)
    action = option(args, "--action-names")
    resource = option(args, "--resource-arns")
    keys = context(options(args, "--context-entries"))
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, resolve(r, keys)) for r in resources):
            continue
        if condition_holds(statement.get("Condition", {}), keys):
            return "allowed"
    return "implicitDeny"


def main(args):
    if args[:2] == ["sts", "get-caller-identity"]:
        print("123456789012")
    elif args[:2] == ["cloudformation", "describe-stack-resources"]:
        print(json.loads(os.environ["FAKE_AWS_RESOURCES"])[option(args, "--logical-resource-id")])
    elif args[:2] == ["iam", "get-role-policy"]:
        with open(os.environ["FAKE_AWS_POLICY"]) as f:
            print(f.read())
    elif args[:2] == ["iam", "simulate-custom-policy"]:
        print(simulate(args))
    else:
        sys.exit(f"fake aws: unexpected call {args}")


main(sys.argv[1:])
