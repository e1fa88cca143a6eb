#!/usr/bin/env bash
# Verifies in a real account that a connector session reaches only its own secret, cursor items and dead letters.
#
#   infra/verify-isolation.sh <stack-name> [region]
#
# IAM is not enforced by local emulators, so the template tests assert the policies' text; this script asks
# the IAM policy simulator (`aws iam simulate-custom-policy`) to evaluate the deployed connector-access
# policy with the session tag connector_id=acme for acme's and another connector's (globex) secret and items.
# It needs iam:GetRolePolicy, iam:SimulateCustomPolicy, cloudformation:DescribeStackResources and
# sts:GetCallerIdentity; it creates and changes nothing. Exit status 0 when every case has the expected decision.
set -euo pipefail

stack="${1:?usage: $0 <stack-name> [region]}"
region="${2:-${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}}"
aws="${AWS_CLI:-aws}"

physical() {
  "$aws" cloudformation describe-stack-resources --region "$region" --stack-name "$stack" \
    --logical-resource-id "$1" --query 'StackResources[0].PhysicalResourceId' --output text
}

account="$("$aws" sts get-caller-identity --query Account --output text)"
role="$(physical ConnectorAccessRole)"
table="$(physical CursorTable)"
bucket="$(physical DeadLetterBucket)"
policy="$(mktemp)"
trap 'rm -f "$policy"' EXIT
"$aws" iam get-role-policy --role-name "$role" --policy-name one-connector --query PolicyDocument --output json >"$policy"

table_arn="arn:aws:dynamodb:${region}:${account}:table/${table}"
secret_arn() { echo "arn:aws:secretsmanager:${region}:${account}:secret:okta-ingest/$1-AbCdEf"; }
session_tag="ContextKeyName=aws:PrincipalTag/connector_id,ContextKeyValues=acme,ContextKeyType=string"

failures=0
# expect DECISION ACTION RESOURCE CONTEXT-ENTRY... : one simulated request.
expect() {
  local expected="$1" action="$2" resource="$3"
  shift 3
  local decision
  decision="$("$aws" iam simulate-custom-policy --policy-input-list "file://$policy" \
    --action-names "$action" --resource-arns "$resource" --context-entries "$session_tag" "$@" \
    --query 'EvaluationResults[0].EvalDecision' --output text)"
  if [[ "$decision" == "$expected" ]]; then
    echo "ok    $action $resource $* -> $decision"
  else
    echo "FAIL  $action $resource $* -> $decision, expected $expected"
    failures=$((failures + 1))
  fi
}

tag() { echo "ContextKeyName=secretsmanager:ResourceTag/connector_id,ContextKeyValues=$1,ContextKeyType=string"; }
keys() { echo "ContextKeyName=dynamodb:LeadingKeys,ContextKeyValues=$1,ContextKeyType=stringList"; }
prefix() { echo "ContextKeyName=s3:prefix,ContextKeyValues=$1,ContextKeyType=string"; }

echo "connector session tagged connector_id=acme, stack $stack ($region):"
expect allowed secretsmanager:GetSecretValue "$(secret_arn acme)" "$(tag acme)"
expect implicitDeny secretsmanager:GetSecretValue "$(secret_arn globex)" "$(tag globex)"
# A secret named for acme but tagged for another connector (or the reverse) is refused too.
expect implicitDeny secretsmanager:GetSecretValue "$(secret_arn acme)" "$(tag globex)"
expect implicitDeny secretsmanager:GetSecretValue "$(secret_arn globex)" "$(tag acme)"
for action in dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem; do
  expect allowed "$action" "$table_arn" "$(keys acme)"
  expect allowed "$action" "$table_arn" "$(keys 'acme#backfill')"
  expect implicitDeny "$action" "$table_arn" "$(keys globex)"
  expect implicitDeny "$action" "$table_arn" "$(keys 'globex#backfill')"
done
# Nothing beyond the three item actions: no scans, no deletes.
expect implicitDeny dynamodb:Scan "$table_arn" "$(keys acme)"
expect implicitDeny dynamodb:DeleteItem "$table_arn" "$(keys acme)"
# Dead letters: objects under the connector's own prefix only, and listing only that prefix.
for action in s3:PutObject s3:GetObject s3:DeleteObject; do
  expect allowed "$action" "arn:aws:s3:::${bucket}/acme/e1.json"
  expect implicitDeny "$action" "arn:aws:s3:::${bucket}/globex/e1.json"
done
expect allowed s3:ListBucket "arn:aws:s3:::${bucket}" "$(prefix acme/)"
expect implicitDeny s3:ListBucket "arn:aws:s3:::${bucket}" "$(prefix globex/)"

if ((failures > 0)); then
  echo "$failures case(s) did not get the expected decision: connector sessions are not isolated" >&2
  exit 1
fi
echo "every case got the expected decision"
