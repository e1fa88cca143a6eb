"""Deploys infra/template.yaml to moto and checks what it creates.

The SAM template is translated to plain CloudFormation with aws-sam-translator (as `sam deploy` would), its
CodeUri pointed at a small zip in moto's S3 (the real artifact is built by cargo-lambda), and the stack is
created in moto's in-process CloudFormation (no network, no Docker: creating a function needs neither, only
invoking would).

What moto cannot emulate, and is therefore checked on the translated template instead:
- resource types its CloudFormation skips: AWS::SecretsManager::Secret, AWS::Scheduler::Schedule,
  AWS::CloudWatch::Alarm, AWS::Lambda::EventInvokeConfig, AWS::S3::BucketPolicy (outputs referring to them are
  dropped too);
- properties it ignores: the function's Architectures, LoggingConfig and KmsKeyArn, Kinesis StreamModeDetails and
  StreamEncryption, DynamoDB PointInTimeRecovery, the log group's KMS key;
- behaviour: KMS key policies and IAM are stored, not enforced; alarms are never evaluated (no metric math,
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
    "AWS::CloudWatch::Alarm",
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
        parameters = {"ConnectorId": CONNECTOR, **parameters}
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


def test_moto_skips_only_the_resource_types_documented_as_not_emulated(deploy):
    _, physical = deploy()
    assert deploy.skipped_types == NOT_EMULATED_BY_MOTO
    for created in (
        "CursorTable",
        "EventStream",
        "IngestFunction",
        "DeadLetterQueue",
        "DeadLetterBucket",
        "DataKey",
        "FunctionLogGroup",
    ):
        assert physical.get(created), f"{created} was not created"


def test_cursor_table_is_keyed_by_connector_id_and_billed_on_demand(deploy):
    outputs, _ = deploy()
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=outputs["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "connector_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "connector_id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True


def test_function_runs_the_bootstrap_with_its_configuration_in_the_environment(deploy):
    outputs, _ = deploy()
    lam = boto3.client("lambda", region_name=REGION)
    function = lam.get_function(FunctionName=outputs["FunctionName"])
    config = function["Configuration"]
    assert config["FunctionArn"] == outputs["FunctionArn"]
    assert (config["Runtime"], config["Handler"]) == ("provided.al2023", "bootstrap")
    assert (config["Timeout"], config["MemorySize"]) == (300, 256)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 2
    env = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
    assert env == {
        "CURSOR_TABLE": outputs["TableName"],
        "EVENT_STREAM": outputs["StreamName"],
        "DEAD_LETTER_BUCKET": outputs["DeadLetterBucketName"],
        "DEAD_LETTER_KMS_KEY": outputs["EncryptionKeyArn"],
        "SECRET_ID_TEMPLATE": "okta-ingest/{connector_id}",
        "DEFAULT_CONNECTOR_ID": CONNECTOR,
        "RUST_LOG": "info",
        "PAGE_LIMIT": "1000",
        "LOOKBACK_MINUTES": "15",
        "SAFETY_MARGIN_SECONDS": "20",
        "PAUSE_AFTER_FAILURES": "5",
        "RATE_SHARE": "0.5",
    }


def test_parameters_reach_the_function(deploy):
    outputs, _ = deploy(
        FunctionTimeout=600, FunctionMemorySize=512, ReservedConcurrency=1, LogLevel="DEBUG", PageLimit=200
    )
    lam = boto3.client("lambda", region_name=REGION)
    function = lam.get_function(FunctionName=outputs["FunctionName"])
    assert (function["Configuration"]["Timeout"], function["Configuration"]["MemorySize"]) == (600, 512)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 1
    env = function["Configuration"]["Environment"]["Variables"]
    assert (env["RUST_LOG"], str(env["PAGE_LIMIT"])) == ("debug", "200")


def test_event_stream_uses_retention_parameter(deploy):
    outputs, _ = deploy(StreamRetentionHours=48)
    summary = boto3.client("kinesis", region_name=REGION).describe_stream_summary(StreamName=outputs["StreamName"])
    assert summary["StreamDescriptionSummary"]["StreamARN"] == outputs["StreamArn"]
    assert summary["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48


def test_provisioned_stream_gets_the_shard_count_parameter(deploy):
    outputs, _ = deploy(StreamMode="PROVISIONED", StreamShardCount=3)
    summary = boto3.client("kinesis", region_name=REGION).describe_stream_summary(StreamName=outputs["StreamName"])
    assert summary["StreamDescriptionSummary"]["OpenShardCount"] == 3


def test_shard_count_is_only_set_for_provisioned_streams(template):
    stream = template["Resources"]["EventStream"]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": {"Ref": "StreamMode"}}
    assert stream["ShardCount"] == {
        "Fn::If": ["StreamIsProvisioned", {"Ref": "StreamShardCount"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["StreamIsProvisioned"] == {"Fn::Equals": [{"Ref": "StreamMode"}, "PROVISIONED"]}
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"


def test_function_role_names_every_resource_it_may_touch(deploy):
    outputs, physical = deploy()
    iam = boto3.client("iam", region_name=REGION)
    document = iam.get_role_policy(RoleName=physical["FunctionRole"], PolicyName="okta-ingest-function")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = json.loads(document)
    granted = {}
    conditions = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted[action] = statement["Resource"]
            conditions[action] = statement.get("Condition")
    table_arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=outputs["TableName"])["Table"][
        "TableArn"
    ]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    log_group_arn = f"arn:aws:logs:{REGION}:{account}:log-group:{LOG_GROUP}:*"
    assert granted == {
        "secretsmanager:GetSecretValue": f"arn:aws:secretsmanager:{REGION}:{account}:secret:okta-ingest/{CONNECTOR}-??????",
        "dynamodb:GetItem": table_arn,
        "dynamodb:PutItem": table_arn,
        "dynamodb:UpdateItem": table_arn,
        "kinesis:PutRecords": outputs["StreamArn"],
        "kinesis:DescribeStreamSummary": outputs["StreamArn"],
        "kms:Decrypt": outputs["EncryptionKeyArn"],
        "kms:GenerateDataKey": outputs["EncryptionKeyArn"],
        "sqs:SendMessage": queue_arn,
        "s3:PutObject": f"arn:aws:s3:::{outputs['DeadLetterBucketName']}/{CONNECTOR}/*",
        "s3:GetObject": f"arn:aws:s3:::{outputs['DeadLetterBucketName']}/{CONNECTOR}/*",
        "s3:DeleteObject": f"arn:aws:s3:::{outputs['DeadLetterBucketName']}/{CONNECTOR}/*",
        "s3:ListBucket": f"arn:aws:s3:::{outputs['DeadLetterBucketName']}",
        "logs:CreateLogStream": log_group_arn,
        "logs:PutLogEvents": log_group_arn,
    }
    # Each stack's function reads only its own connector's cursor items.
    own_items = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [CONNECTOR, f"{CONNECTOR}#backfill"]}}
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert conditions[action] == own_items
    # ... and lists only its own connector's dead letters.
    assert conditions["s3:ListBucket"] == {"StringLike": {"s3:prefix": f"{CONNECTOR}/*"}}
    assert all(
        conditions[a] is None for a in granted if not a.startswith("dynamodb:") and a != "s3:ListBucket"
    )


def test_data_key_rotates_and_its_policy_lets_the_function_use_it(deploy):
    outputs, physical = deploy()
    kms = boto3.client("kms", region_name=REGION)
    key_id = outputs["EncryptionKeyArn"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    if isinstance(policy, str):
        policy = json.loads(policy)
    role_arn = boto3.client("iam", region_name=REGION).get_role(RoleName=physical["FunctionRole"])["Role"]["Arn"]
    function_statements = [s for s in policy["Statement"] if s["Principal"].get("AWS") == role_arn]
    assert len(function_statements) == 1
    assert sorted(function_statements[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
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
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_schedule_polls_the_connector_every_minute_without_retries(template):
    (schedule,) = resources_of_type(template, "AWS::Scheduler::Schedule").values()
    properties = schedule["Properties"]
    assert template["Parameters"]["ScheduleExpression"]["Default"] == "rate(1 minute)"
    assert properties["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert json.loads(sub(target["Input"], ConnectorId=CONNECTOR)) == {"connector_id": CONNECTOR, "action": "poll"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_scheduler_role_may_only_invoke_the_function(template):
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["IngestFunction", "Arn"]}}
    ]


def test_connector_secret_is_named_for_the_connector_and_encrypted(template):
    (secret,) = resources_of_type(template, "AWS::SecretsManager::Secret").values()
    properties = secret["Properties"]
    assert sub(properties["Name"], ConnectorId=CONNECTOR) == f"okta-ingest/{CONNECTOR}"
    assert properties["KmsKeyId"] == {"Ref": "DataKey"}
    assert "placeholder" in json.loads(properties["SecretString"])
    assert template["Outputs"]["SecretArn"]["Value"] == {"Ref": "ConnectorSecret"}


def test_cursor_and_its_key_survive_stack_deletion_and_replacement(template):
    for name in ("CursorTable", "DataKey"):
        resource = template["Resources"][name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name
    table = template["Resources"]["CursorTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


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


def test_function_errors_alarm_fires_on_any_error(template):
    alarm = alarm_on(template, "Errors")
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "IngestFunction"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_paused_alarm_holds_until_the_connector_reports_resumed(template):
    alarm = alarm_on(template, "Paused")
    assert alarm["Namespace"] == "OktaIngest"
    assert alarm["Dimensions"] == [{"Name": "ConnectorId", "Value": {"Ref": "ConnectorId"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "ignore"


def test_lag_alarm_uses_the_threshold_parameter(template):
    alarm = alarm_on(template, "IngestionLagSeconds")
    assert template["Parameters"]["LagAlarmThresholdSeconds"]["Default"] == 600
    assert alarm["Threshold"] == {"Ref": "LagAlarmThresholdSeconds"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_silence_alarm_fires_when_polls_publish_nothing_or_nothing_reports(template):
    alarm = alarm_on(template, "EventsPublished")
    assert template["Parameters"]["SilencePeriodSeconds"]["Default"] == 6 * 3600
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"EventsPublished", "Invocations"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "OktaIngest"
        assert stat["Metric"]["Dimensions"] == [{"Name": "ConnectorId", "Value": {"Ref": "ConnectorId"}}]
        assert (stat["Period"], stat["Stat"]) == ({"Ref": "SilencePeriodSeconds"}, "Sum")
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    for series in stats:
        assert re.search(rf"\b{series}\b", expression["Expression"]), f"the expression ignores {series}"
    assert alarm["TreatMissingData"] == "breaching"


def test_alarms_notify_the_optional_topic(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 4
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
    assert "docs/operations.md#refused-events" in alarm["AlarmDescription"]["Fn::Sub"]
