"""Deploys infra/template.yaml to moto and checks what it creates.

The SAM template is translated to plain CloudFormation with aws-sam-translator (as `sam deploy` would), its
CodeUri pointed at a small zip in moto's S3 (the real artifact is built by cargo-lambda), and the stack is
created in moto's in-process CloudFormation (no network, no Docker: creating a function needs neither, only
invoking would).

What moto cannot emulate, and is therefore checked on the translated template instead:
- resource types its CloudFormation skips: AWS::SecretsManager::Secret, AWS::Scheduler::Schedule,
  AWS::Scheduler::ScheduleGroup, AWS::CloudWatch::Alarm, AWS::Lambda::EventInvokeConfig,
  AWS::Logs::QueryDefinition, AWS::S3::BucketPolicy (outputs referring to them are dropped too);
- properties it ignores: the function's Architectures, LoggingConfig and KmsKeyArn, Kinesis StreamModeDetails and
  StreamEncryption, DynamoDB PointInTimeRecovery, the log group's KMS key;
- behaviour: KMS key policies and IAM are stored, not enforced (so the per-connector isolation is asserted on the
  policies here, and infra/verify-isolation.sh checks it in a real account with the IAM policy simulator); alarms are never evaluated (no metric math,
  no Embedded Metric Format extraction from logs); the schedule never fires.
"""

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
REGION = "us-east-1"
ARTIFACT_BUCKET = "okta-ingest-artifacts"
ARTIFACT_KEY = "okta-ingest.zip"
CONNECTOR = "acme-prod"
STACK = "okta-ingest"
LOG_GROUP = f"/okta-ingest/{STACK}/function"
# Resource types moto's CloudFormation skips (with a warning) instead of creating.
NOT_EMULATED_BY_MOTO = {
    "AWS::SecretsManager::Secret",
    "AWS::Scheduler::Schedule",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::QueryDefinition",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
}
# Those skips are expected and asserted below; keep them out of the report.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* not supported by moto:UserWarning")


class NoManagedPolicies:
    """The template attaches no AWS managed policies, so the translator never needs their ARNs."""

    def load(self):
        return {}


def translated_template():
    sam = yaml_parse(TEMPLATE.read_text())
    sam["Resources"]["IngestFunction"]["Properties"]["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{ARTIFACT_KEY}"
    return transform(sam, {}, NoManagedPolicies())


def resources_of_type(template, resource_type):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def sub(value, **variables):
    """Resolves a Fn::Sub whose variables are all given (enough for parameter-only strings)."""
    text = value["Fn::Sub"]
    for name, replacement in variables.items():
        text = text.replace("${" + name + "}", replacement)
    assert "${" not in text, f"unresolved variable in {text!r}"
    return text


@pytest.fixture(scope="module")
def fake_credentials():
    """Region and dummy credentials, so neither the translator nor boto3 looks for real ones."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def template(fake_credentials):
    return translated_template()


@pytest.fixture
def aws(fake_credentials):
    with mock_aws():
        yield


@pytest.fixture
def deploy(aws, template):
    """Creates the stack with the given parameters; returns its outputs and physical resource ids."""
    skipped = set()

    def create(**parameters):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=ARTIFACT_KEY, Body=archive.getvalue())
        cfn = boto3.client("cloudformation", region_name=REGION)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cfn.create_stack(
                StackName=STACK,
                TemplateBody=json.dumps(template),
                Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
                Capabilities=["CAPABILITY_IAM"],
            )
        skipped.update(
            re.findall(r"Tried to parse (\S+) but it's not supported", " ".join(str(w.message) for w in caught))
        )
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        return outputs, physical

    create.skipped_types = skipped
    return create


def statements_of(document):
    if isinstance(document, str):
        document = json.loads(document)
    return document["Statement"]


def as_list(value):
    return value if isinstance(value, list) else [value]


def role_policy(physical, role, policy):
    """The inline `policy` of the stack's `role`, as a document."""
    document = boto3.client("iam", region_name=REGION).get_role_policy(RoleName=physical[role], PolicyName=policy)[
        "PolicyDocument"
    ]
    return json.loads(document) if isinstance(document, str) else document


def managed_policy(arn):
    """The default version of the managed policy `arn`, as a document."""
    iam = boto3.client("iam", region_name=REGION)
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def account_id():
    return boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]


def granted_actions(statements):
    """action -> (resource, condition) of every Allow statement."""
    granted = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert action not in granted, f"{action} granted twice"
            granted[action] = (statement["Resource"], statement.get("Condition"))
    return granted


def exported(outputs, name):
    """The value of an `export NAME=value` output."""
    (line,) = [v for v in outputs.values() if re.fullmatch(rf"export {name}=\S+", v)]
    return line.split("=", 1)[1]


def test_moto_skips_only_the_resource_types_documented_as_not_emulated(deploy):
    _, physical = deploy(ConnectorId=CONNECTOR)
    assert deploy.skipped_types == NOT_EMULATED_BY_MOTO
    for created in (
        "CursorTable",
        "EventStream",
        "IngestFunction",
        "DeadLetterQueue",
        "DeadLetterBucket",
        "DataKey",
        "FunctionLogGroup",
        "ConnectorAccessRole",
        "ConnectorAdminPolicy",
    ):
        assert physical.get(created), f"{created} was not created"


def test_a_fleet_stack_creates_no_connector_unless_asked(deploy, template):
    _, physical = deploy()
    assert "FirstConnectorSecret" not in physical and "FirstConnectorSchedule" not in physical
    assert template["Parameters"]["ConnectorId"]["Default"] == ""
    for name in ("FirstConnectorSecret", "FirstConnectorSchedule"):
        assert template["Resources"][name]["Condition"] == "HasFirstConnector"
    assert template["Conditions"]["HasFirstConnector"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConnectorId"}, ""]}]}


def test_the_first_connector_parameter_still_deploys(deploy):
    outputs, _ = deploy(ConnectorId=CONNECTOR)
    env = boto3.client("lambda", region_name=REGION).get_function(FunctionName=outputs["FunctionName"])[
        "Configuration"
    ]["Environment"]["Variables"]
    assert env["DEFAULT_CONNECTOR_ID"] == CONNECTOR


def test_cursor_table_is_keyed_by_connector_id_and_billed_on_demand(deploy):
    outputs, _ = deploy()
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=exported(outputs, "CURSOR_TABLE"))
    table = table["Table"]
    assert table["KeySchema"] == [{"AttributeName": "connector_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "connector_id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True


def test_function_runs_the_bootstrap_with_its_configuration_in_the_environment(deploy):
    outputs, physical = deploy()
    lam = boto3.client("lambda", region_name=REGION)
    function = lam.get_function(FunctionName=outputs["FunctionName"])
    config = function["Configuration"]
    assert outputs["ExportFunctionArn"] == f"export FUNCTION_ARN={config['FunctionArn']}"
    assert (config["Runtime"], config["Handler"]) == ("provided.al2023", "bootstrap")
    assert (config["Timeout"], config["MemorySize"]) == (300, 256)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 100
    env = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
    access_role = boto3.client("iam", region_name=REGION).get_role(RoleName=physical["ConnectorAccessRole"])["Role"]
    assert outputs["ConnectorAccessRoleArn"] == access_role["Arn"]
    assert env == {
        "CURSOR_TABLE": exported(outputs, "CURSOR_TABLE"),
        "EVENT_STREAM": exported(outputs, "EVENT_STREAM"),
        "DEAD_LETTER_BUCKET": outputs["DeadLetterBucketName"],
        "DEAD_LETTER_KMS_KEY": outputs["EncryptionKeyArn"],
        "SECRET_ID_TEMPLATE": "okta-ingest/{connector_id}",
        "CONNECTOR_ACCESS_ROLE_ARN": access_role["Arn"],
        "CONNECTOR_CACHE_SIZE": "128",
        "PER_CONNECTOR_METRICS": "false",
        "DEFAULT_CONNECTOR_ID": "",
        "RUST_LOG": "info",
        "PAGE_LIMIT": "1000",
        "LOOKBACK_MINUTES": "15",
        "SAFETY_MARGIN_SECONDS": "20",
        "PAUSE_AFTER_FAILURES": "5",
        "RATE_SHARE": "0.5",
    }


def test_parameters_reach_the_function(deploy):
    outputs, _ = deploy(
        FunctionTimeout=600,
        FunctionMemorySize=512,
        ReservedConcurrency=7,
        LogLevel="DEBUG",
        PageLimit=200,
        ConnectorCacheSize=50,
        PerConnectorMetrics="true",
    )
    lam = boto3.client("lambda", region_name=REGION)
    function = lam.get_function(FunctionName=outputs["FunctionName"])
    assert (function["Configuration"]["Timeout"], function["Configuration"]["MemorySize"]) == (600, 512)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 7
    env = {k: str(v) for k, v in function["Configuration"]["Environment"]["Variables"].items()}
    assert (env["RUST_LOG"], env["PAGE_LIMIT"]) == ("debug", "200")
    assert (env["CONNECTOR_CACHE_SIZE"], env["PER_CONNECTOR_METRICS"]) == ("50", "true")


def test_event_stream_uses_retention_parameter(deploy):
    outputs, _ = deploy(StreamRetentionHours=48)
    summary = boto3.client("kinesis", region_name=REGION).describe_stream_summary(
        StreamName=exported(outputs, "EVENT_STREAM")
    )
    assert summary["StreamDescriptionSummary"]["StreamARN"] == outputs["StreamArn"]
    assert summary["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48


def test_provisioned_stream_gets_the_shard_count_parameter(deploy):
    outputs, _ = deploy(StreamMode="PROVISIONED", StreamShardCount=3)
    summary = boto3.client("kinesis", region_name=REGION).describe_stream_summary(
        StreamName=exported(outputs, "EVENT_STREAM")
    )
    assert summary["StreamDescriptionSummary"]["OpenShardCount"] == 3


def test_shard_count_is_only_set_for_provisioned_streams(template):
    stream = template["Resources"]["EventStream"]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": {"Ref": "StreamMode"}}
    assert stream["ShardCount"] == {
        "Fn::If": ["StreamIsProvisioned", {"Ref": "StreamShardCount"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["StreamIsProvisioned"] == {"Fn::Equals": [{"Ref": "StreamMode"}, "PROVISIONED"]}
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"


def test_function_role_reaches_no_secret_or_cursor_itself(deploy):
    outputs, physical = deploy()
    granted = granted_actions(statements_of(role_policy(physical, "FunctionRole", "okta-ingest-function")))
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    account = account_id()
    log_group_arn = f"arn:aws:logs:{REGION}:{account}:log-group:{LOG_GROUP}:*"
    access_role_arn = outputs["ConnectorAccessRoleArn"]
    assert {action: resource for action, (resource, _) in granted.items()} == {
        "sts:AssumeRole": access_role_arn,
        "sts:TagSession": access_role_arn,
        "kinesis:PutRecords": outputs["StreamArn"],
        "kinesis:DescribeStreamSummary": outputs["StreamArn"],
        "kms:Decrypt": outputs["EncryptionKeyArn"],
        "kms:GenerateDataKey": outputs["EncryptionKeyArn"],
        "sqs:SendMessage": queue_arn,
        "logs:CreateLogStream": log_group_arn,
        "logs:PutLogEvents": log_group_arn,
    }
    assert all(condition is None for _, condition in granted.values())


def test_connector_sessions_reach_only_the_tagged_connectors_secret_and_items(deploy):
    outputs, physical = deploy()
    granted = granted_actions(statements_of(role_policy(physical, "ConnectorAccessRole", "one-connector")))
    account = account_id()
    table_arn = boto3.client("dynamodb", region_name=REGION).describe_table(
        TableName=exported(outputs, "CURSOR_TABLE")
    )["Table"]["TableArn"]
    tag = "${aws:PrincipalTag/connector_id}"
    assert set(granted) == {
        "secretsmanager:GetSecretValue",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    resource, condition = granted["secretsmanager:GetSecretValue"]
    # Both the name and the tag of the secret must match the session's connector.
    assert resource == f"arn:aws:secretsmanager:{REGION}:{account}:secret:okta-ingest/{tag}-??????"
    assert condition == {"StringEquals": {"secretsmanager:ResourceTag/connector_id": tag}}
    own_items = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [tag, f"{tag}#backfill"]}}
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert granted[action] == (table_arn, own_items), action
    # ... and only its own dead letters.
    objects = f"arn:aws:s3:::{outputs['DeadLetterBucketName']}/{tag}/*"
    for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
        assert granted[action] == (objects, None), action
    assert granted["s3:ListBucket"] == (
        f"arn:aws:s3:::{outputs['DeadLetterBucketName']}",
        {"StringLike": {"s3:prefix": f"{tag}/*"}},
    )
    via = {
        "StringEquals": {
            "kms:ViaService": [
                f"secretsmanager.{REGION}.amazonaws.com",
                f"dynamodb.{REGION}.amazonaws.com",
                f"s3.{REGION}.amazonaws.com",
            ]
        }
    }
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert granted[action] == (outputs["EncryptionKeyArn"], via), action


def test_only_the_function_may_open_a_connector_session_and_only_with_a_connector_tag(deploy):
    _, physical = deploy()
    iam = boto3.client("iam", region_name=REGION)
    role = iam.get_role(RoleName=physical["ConnectorAccessRole"])["Role"]
    function_role_arn = iam.get_role(RoleName=physical["FunctionRole"])["Role"]["Arn"]
    trust = role["AssumeRolePolicyDocument"]
    (statement,) = statements_of(trust)
    assert statement["Principal"] == {"AWS": function_role_arn}
    assert sorted(as_list(statement["Action"])) == ["sts:AssumeRole", "sts:TagSession"]
    assert statement["Condition"] == {
        "StringLike": {"aws:RequestTag/connector_id": "?*"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["connector_id"]},
    }
    assert role["MaxSessionDuration"] == 3600


def test_data_key_rotates_and_its_policy_lets_the_function_and_sessions_use_it(deploy):
    outputs, physical = deploy()
    kms = boto3.client("kms", region_name=REGION)
    key_id = outputs["EncryptionKeyArn"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    if isinstance(policy, str):
        policy = json.loads(policy)
    iam = boto3.client("iam", region_name=REGION)
    roles = sorted(iam.get_role(RoleName=physical[r])["Role"]["Arn"] for r in ("FunctionRole", "ConnectorAccessRole"))
    users = [s for s in policy["Statement"] if isinstance(s["Principal"].get("AWS"), list)]
    assert len(users) == 1
    assert sorted(users[0]["Principal"]["AWS"]) == roles
    assert sorted(users[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert all(s["Principal"] != "*" and s["Principal"].get("AWS") != "*" for s in policy["Statement"])


def test_logs_go_to_the_stacks_own_group_with_retention(deploy):
    deploy(LogRetentionDays=14)
    groups = boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix="/okta-ingest/")[
        "logGroups"
    ]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(LOG_GROUP, 14)]


def test_dead_letter_queue_is_encrypted_with_the_data_key(deploy):
    outputs, physical = deploy()
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["KmsMasterKeyId"] == physical["DataKey"]
    assert attributes["MessageRetentionPeriod"] == "1209600"


def test_function_is_arm64_and_logs_json(template):
    function = template["Resources"]["IngestFunction"]["Properties"]
    assert function["Architectures"] == ["arm64"]
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    assert function["KmsKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def test_failed_async_invocations_go_to_the_dead_letter_queue_without_retry(template):
    (config,) = resources_of_type(template, "AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    assert properties["FunctionName"] == {"Ref": "IngestFunction"}
    assert properties["MaximumRetryAttempts"] == 0
    # Throttled invocations of a burst wait in Lambda's queue for up to this long before being dropped.
    assert properties["MaximumEventAgeInSeconds"] == 300
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_first_connector_schedule_lives_in_the_group_and_is_spread(template):
    (schedule,) = resources_of_type(template, "AWS::Scheduler::Schedule").values()
    properties = schedule["Properties"]
    assert properties["GroupName"] == {"Ref": "ConnectorSchedules"}
    assert properties["Name"] == {"Ref": "ConnectorId"}
    assert template["Parameters"]["ScheduleExpression"]["Default"] == "rate(1 minute)"
    assert properties["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert properties["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1}
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert json.loads(sub(target["Input"], ConnectorId=CONNECTOR)) == {"connector_id": CONNECTOR, "action": "poll"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    (group,) = resources_of_type(template, "AWS::Scheduler::ScheduleGroup").values()
    assert sub(group["Properties"]["Name"], **{"AWS::StackName": STACK}) == f"okta-ingest-{STACK}"


def test_scheduler_role_may_only_invoke_the_function_for_the_groups_schedules(template):
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    source = sub(trust["Condition"]["ArnLike"]["aws:SourceArn"], **{
        "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::StackName": STACK
    })
    assert source == f"arn:aws:scheduler:{REGION}:123456789012:schedule/okta-ingest-{STACK}/*"
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["IngestFunction", "Arn"]}}
    ]


def test_admin_policy_passes_only_the_scheduler_role_and_touches_only_connector_resources(deploy):
    outputs, physical = deploy()
    granted = granted_actions(statements_of(managed_policy(outputs["ConnectorAdminPolicyArn"])))
    scheduler_role = exported(outputs, "SCHEDULER_ROLE_ARN")
    assert granted["iam:PassRole"] == (
        scheduler_role,
        {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
    )
    account = account_id()
    for action, (resource, _) in granted.items():
        if action.startswith("secretsmanager:") and action != "secretsmanager:ListSecrets":
            assert resource == f"arn:aws:secretsmanager:{REGION}:{account}:secret:okta-ingest/*", action
        if action == "scheduler:GetScheduleGroup":
            assert resource == f"arn:aws:scheduler:{REGION}:{account}:schedule-group/okta-ingest-{STACK}"
        elif action.startswith("scheduler:") and action != "scheduler:ListSchedules":
            assert resource == f"arn:aws:scheduler:{REGION}:{account}:schedule/okta-ingest-{STACK}/*", action
        assert resource != "*" or action.endswith(("ListSecrets", "ListSchedules")), action
    assert "scheduler:CreateSchedule" in granted and "dynamodb:DeleteItem" in granted


def test_first_connector_secret_is_named_tagged_and_encrypted(template):
    (secret,) = resources_of_type(template, "AWS::SecretsManager::Secret").values()
    properties = secret["Properties"]
    assert sub(properties["Name"], ConnectorId=CONNECTOR) == f"okta-ingest/{CONNECTOR}"
    assert properties["KmsKeyId"] == {"Ref": "DataKey"}
    assert properties["Tags"] == [{"Key": "connector_id", "Value": {"Ref": "ConnectorId"}}]
    assert "placeholder" in json.loads(properties["SecretString"])


def test_cursor_and_its_key_survive_stack_deletion_and_replacement(template):
    for name in ("CursorTable", "DataKey"):
        resource = template["Resources"][name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name
    table = template["Resources"]["CursorTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def evaluate(value, conditions, **variables):
    """Resolves the Fn::Join, Fn::If and parameter-only Fn::Sub of an output, given each condition's value."""
    if isinstance(value, str):
        return value
    (function, argument), = value.items()
    if function == "Fn::Sub":
        return sub(value, **variables)
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return evaluate(when_true if conditions[condition] else when_false, conditions, **variables)
    if function == "Fn::Join":
        separator, parts = argument
        return separator.join(evaluate(part, conditions, **variables) for part in parts)
    raise AssertionError(f"unexpected {function} in {value!r}")


SHELL_VARIABLES = {
    "CursorTable": "t",
    "EventStream": "s",
    "OcsfEventStream": "o",
    "ConnectorSchedules": "g",
    "IngestFunction.Arn": "arn:f",
    "SchedulerRole.Arn": "arn:r",
    "DataKey.Arn": "arn:k",
}


@pytest.mark.parametrize("ocsf", [False, True])
def test_outputs_are_ready_to_paste_export_lines(deploy, template, ocsf):
    outputs, _ = deploy(OcsfStream="Enabled" if ocsf else "Disabled")
    expected = {
        "CURSOR_TABLE",
        "EVENT_STREAM",
        "SECRET_ID_TEMPLATE",
        "SCHEDULE_GROUP",
        "FUNCTION_ARN",
        "SCHEDULER_ROLE_ARN",
        "SECRET_KMS_KEY_ID",
    } | ({"OCSF_STREAM"} if ocsf else set())
    # The one-line form: a single `export A=1 B=2 ...` naming every variable the command line reads.
    line = evaluate(template["Outputs"]["ShellExports"]["Value"], {"HasOcsfStream": ocsf}, **SHELL_VARIABLES)
    words = line.split()
    assert words[0] == "export"
    assert {w.split("=", 1)[0] for w in words[1:]} == expected
    assert all(re.fullmatch(r"[A-Z_]+=\S+", w) for w in words[1:])
    # One output per variable as well (conditional ones only with their condition); those moto resolves
    # carry the real names.
    per_variable = {
        name: evaluate(o["Value"], {}, **SHELL_VARIABLES)
        for name, o in template["Outputs"].items()
        if name.startswith("Export") and (ocsf or o.get("Condition") != "HasOcsfStream")
    }
    assert {v.split()[1].split("=")[0] for v in per_variable.values()} == expected
    assert template["Outputs"]["ExportOcsfStream"]["Condition"] == "HasOcsfStream"
    assert ("ExportOcsfStream" in outputs, "OcsfStreamArn" in outputs) == (ocsf, ocsf)
    assert exported(outputs, "CURSOR_TABLE") == boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"][0]
    assert exported(outputs, "SECRET_ID_TEMPLATE") == "okta-ingest/{connector_id}"
    assert exported(outputs, "SECRET_KMS_KEY_ID") == outputs["EncryptionKeyArn"]


def test_ocsf_stream_is_not_created_unless_enabled(deploy, template):
    _, physical = deploy()
    assert "OcsfEventStream" not in physical
    assert template["Parameters"]["OcsfStream"]["Default"] == "Disabled"
    assert template["Parameters"]["OcsfStream"]["AllowedValues"] == ["Disabled", "Enabled"]
    assert template["Conditions"]["HasOcsfStream"] == {"Fn::Equals": [{"Ref": "OcsfStream"}, "Enabled"]}
    assert template["Resources"]["OcsfEventStream"]["Condition"] == "HasOcsfStream"
    streams = boto3.client("kinesis", region_name=REGION).list_streams()["StreamNames"]
    assert streams == [physical["EventStream"]]


def test_enabled_ocsf_stream_is_its_own_stream_published_to_by_the_function(deploy):
    outputs, physical = deploy(OcsfStream="Enabled", StreamRetentionHours=48)
    kinesis = boto3.client("kinesis", region_name=REGION)
    ocsf = exported(outputs, "OCSF_STREAM")
    assert ocsf == physical["OcsfEventStream"] != exported(outputs, "EVENT_STREAM")
    summary = kinesis.describe_stream_summary(StreamName=ocsf)["StreamDescriptionSummary"]
    assert summary["StreamARN"] == outputs["OcsfStreamArn"]
    assert summary["RetentionPeriodHours"] == 48, "the event stream's retention"
    env = boto3.client("lambda", region_name=REGION).get_function(FunctionName=outputs["FunctionName"])[
        "Configuration"
    ]["Environment"]["Variables"]
    assert env["OCSF_STREAM"] == ocsf
    assert env["EVENT_STREAM"] == exported(outputs, "EVENT_STREAM")
    function = granted_actions(statements_of(role_policy(physical, "FunctionRole", "okta-ingest-function")))
    both = sorted([outputs["StreamArn"], outputs["OcsfStreamArn"]])
    for action in ("kinesis:PutRecords", "kinesis:DescribeStreamSummary"):
        assert sorted(as_list(function[action][0])) == both, action
    admin = granted_actions(statements_of(managed_policy(outputs["ConnectorAdminPolicyArn"])))
    assert sorted(as_list(admin["kinesis:DescribeStreamSummary"][0])) == both
    assert not any(action.startswith("kinesis:") and action != "kinesis:DescribeStreamSummary" for action in admin)


def test_provisioned_ocsf_stream_gets_the_shard_count_parameter(deploy):
    outputs, _ = deploy(OcsfStream="Enabled", StreamMode="PROVISIONED", StreamShardCount=3)
    summary = boto3.client("kinesis", region_name=REGION).describe_stream_summary(
        StreamName=exported(outputs, "OCSF_STREAM")
    )
    assert summary["StreamDescriptionSummary"]["OpenShardCount"] == 3


def test_ocsf_stream_has_the_event_streams_mode_retention_and_key(template):
    resources = template["Resources"]
    assert resources["OcsfEventStream"]["Properties"] == resources["EventStream"]["Properties"]
    assert resources["OcsfEventStream"]["Properties"]["StreamEncryption"] == {
        "EncryptionType": "KMS",
        "KeyId": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    env = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["OCSF_STREAM"] == {"Fn::If": ["HasOcsfStream", {"Ref": "OcsfEventStream"}, {"Ref": "AWS::NoValue"}]}


def alarm_on(template, metric_name):
    """The alarm watching metric_name, directly or inside its metric math."""
    found = []
    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        metrics = [properties.get("MetricName")] + [
            m["MetricStat"]["Metric"]["MetricName"] for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
        if metric_name in metrics:
            found.append(properties)
    assert len(found) == 1, f"expected one alarm on {metric_name}, found {len(found)}"
    return found[0]


def test_fleet_alarms_have_no_per_connector_dimension(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 7
    text = json.dumps(alarms)
    assert "ConnectorId" not in text, "an alarm per connector would cost per connector"


def test_function_errors_alarm_fires_on_any_error(template):
    alarm = alarm_on(template, "Errors")
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "IngestFunction"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_paused_alarm_fires_while_any_connector_reports_paused(template):
    alarm = alarm_on(template, "Paused")
    assert alarm["Namespace"] == "OktaIngest"
    assert "Dimensions" not in alarm
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_lag_alarm_watches_the_worst_connector(template):
    alarm = alarm_on(template, "IngestionLagSeconds")
    assert template["Parameters"]["LagAlarmThresholdSeconds"]["Default"] == 600
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == {"Ref": "LagAlarmThresholdSeconds"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_failures_alarm_counts_failed_polls_across_the_fleet(template):
    alarm = alarm_on(template, "Failed")
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Threshold"]) == ("OktaIngest", "Sum", 0)


def test_silence_alarm_fires_when_polls_publish_nothing_or_nothing_reports(template):
    alarm = alarm_on(template, "EventsPublished")
    assert template["Parameters"]["SilencePeriodSeconds"]["Default"] == 6 * 3600
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"EventsPublished", "Invocations"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "OktaIngest"
        assert (stat["Period"], stat["Stat"]) == ({"Ref": "SilencePeriodSeconds"}, "Sum")
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    for series in stats:
        assert re.search(rf"\b{series}\b", expression["Expression"]), f"the expression ignores {series}"
    assert alarm["TreatMissingData"] == "breaching"


def test_alarms_notify_the_optional_topic(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == expected, name
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_dead_letter_bucket_is_private_encrypted_tls_only_and_expires_objects(template):
    bucket = template["Resources"]["DeadLetterBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    default = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert all(props["PublicAccessBlockConfiguration"].values())
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireUnredrivenEvents"]["ExpirationInDays"] >= 90
    statements = template["Resources"]["DeadLetterBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {
        (s["Effect"], s["Condition"]["Bool"]["aws:SecureTransport"]) for s in statements if s["Sid"] == "TlsOnly"
    } == {("Deny", "false")}
    env = template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DEAD_LETTER_BUCKET"] == {"Ref": "DeadLetterBucket"}


def test_dead_lettered_events_alarm_fires_on_any(template):
    alarm = template["Resources"]["DeadLetteredEventsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OktaIngest", "EventsDeadLettered")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert "docs/operations.md#refused-events" in alarm["AlarmDescription"]
    # Published without a dimension, like every fleet metric: a ConnectorId dimension would match nothing.
    assert "Dimensions" not in alarm


def test_saved_queries_find_the_connector_behind_each_fleet_alarm(template):
    queries = resources_of_type(template, "AWS::Logs::QueryDefinition")
    assert len(queries) == 4
    for name, query in queries.items():
        properties = query["Properties"]
        assert properties["LogGroupNames"] == [{"Ref": "FunctionLogGroup"}], name
        assert re.search(r"\bby ConnectorId\b", properties["QueryString"]), name
    fields = " ".join(q["Properties"]["QueryString"] for q in queries.values())
    for metric in ("Paused", "IngestionLagSeconds", "Failed", "EventsPublished"):
        assert re.search(rf"\b{metric}\b", fields), metric


def test_per_connector_dimensions_are_opt_in(template):
    parameter = template["Parameters"]["PerConnectorMetrics"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["false", "true"])
    env = template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["PER_CONNECTOR_METRICS"] == {"Ref": "PerConnectorMetrics"}


def run_isolation_script(tmp_path, policy, physical):
    import os
    import subprocess

    (tmp_path / "policy.json").write_text(json.dumps(policy))
    root = TEMPLATE.parents[1]
    env = {
        **os.environ,
        "AWS_CLI": str(root / "tests" / "infra" / "fake_aws.py"),
        "FAKE_AWS_POLICY": str(tmp_path / "policy.json"),
        "FAKE_AWS_RESOURCES": json.dumps(
            {
                "ConnectorAccessRole": "access-role",
                "CursorTable": physical["CursorTable"],
                "DeadLetterBucket": physical["DeadLetterBucket"],
            }
        ),
    }
    return subprocess.run(
        ["bash", str(root / "infra" / "verify-isolation.sh"), STACK, REGION],
        env=env,
        capture_output=True,
        text=True,
    )


def test_isolation_script_passes_on_the_deployed_policy(deploy, tmp_path):
    _, physical = deploy()
    document = role_policy(physical, "ConnectorAccessRole", "one-connector")
    result = run_isolation_script(tmp_path, document, physical)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == 26, result.stdout


def test_isolation_script_fails_when_the_policy_lets_a_session_reach_other_connectors(deploy, tmp_path):
    _, physical = deploy()
    document = role_policy(physical, "ConnectorAccessRole", "one-connector")
    for statement in document["Statement"]:
        statement.pop("Condition", None)
        if statement["Action"] == "secretsmanager:GetSecretValue":
            statement["Resource"] = statement["Resource"].replace("${aws:PrincipalTag/connector_id}", "*")
    result = run_isolation_script(tmp_path, document, physical)
    assert result.returncode == 1
    assert "not isolated" in result.stderr
    for leak in ("secretsmanager:GetSecretValue", "dynamodb:GetItem", "s3:ListBucket"):
        assert f"FAIL  {leak}" in result.stdout, result.stdout
