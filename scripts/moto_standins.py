#!/usr/bin/env python3
"""moto_server, with stand-ins for what its CloudFormation and its services lack for this project's stacks.

    python scripts/moto_standins.py -H 127.0.0.1 -p PORT      (the arguments moto_server takes)

moto 5.2.5 deploys most of deploy/*.yml, but skips (with a warning) the resource types in STAND_INS, and the
first !GetAtt on a skipped resource fails the whole stack. Each stand-in here takes the resource's properties,
turns them into the input of the API call that creates it on AWS, validates that input against botocore's
service model (so a misspelt or misplaced property fails the stack as CloudFormation would), and creates the
resource in moto's own backend, so that the API calls the binaries and the tests make find it. Four gaps that
are not resource types are filled here too, each saying what moto lacks: ExecuteChangeSet's outputs and
failures, parameters counted as changed on every update, templates uploaded to S3 on a loopback endpoint, and
the CodeConnections API (`deploy.sh` checks the
GitHub connections). Nothing else of moto is changed.
"""

import json
import re
import sys
import uuid

import botocore.session
from botocore.validate import ParamValidator
from moto.apigatewayv2.models import apigatewayv2_backends
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.codebuild.models import codebuild_backends
from moto.codepipeline.models import codepipeline_backends
from moto.core.common_models import CloudFormationModel
from moto.ecr.models import ecr_backends
from moto.iam.models import get_account_id_from
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.server import main as moto_server
from moto.sqs.models import sqs_backends

_BOTOCORE = botocore.session.get_session()
# moto files each model class under the service its module names (moto.<service>…); the classes below are
# filed under "standins".
_RUN_AS, __name__ = __name__, "moto.standins"


class StandInError(ValidationError):
    """A template's properties that the AWS API would refuse; the message names the resource type and key.
    A ValidationError, so that the caller gets a 400 with that message, not moto's 500 for an exception."""

    # moto reads the service whose error shapes it answers with from the exception's module.
    __module__ = "moto.cloudformation.standins"

    def __init__(self, message: str):
        super().__init__(message=message)


def api_input(resource_type: str, service: str, operation: str, properties: dict) -> dict:
    """`properties`, CloudFormation's names matched case-insensitively to the operation's input members and
    values coerced to the member's type (CloudFormation hands parameters over as strings), validated."""
    shape = _BOTOCORE.get_service_model(service).operation_model(operation).input_shape

    def convert(value, shape, path):
        if shape.type_name == "structure":
            if not isinstance(value, dict):
                raise StandInError(f"{resource_type}: {path} is {value!r}, not an object")
            members = {name.lower(): name for name in shape.members}
            converted = {}
            for key, item in value.items():
                member = members.get(key.lower())
                if member is None:
                    raise StandInError(f"{resource_type}: {path}{key} is not a member of {service} "
                                       f"{operation}'s {shape.name} ({', '.join(shape.members)})")
                converted[member] = convert(item, shape.members[member], f"{path}{key}.")
            return converted
        if shape.type_name == "list":
            # moto leaves a list item `!If [c, x, !Ref AWS::NoValue]` as null where CloudFormation drops it.
            return [convert(item, shape.member, path) for item in value if item is not None]
        if shape.type_name == "map":
            return {key: convert(item, shape.value, path) for key, item in value.items()}
        if shape.type_name == "string" and isinstance(value, (dict, list)):
            return json.dumps(value)  # policy documents: CloudFormation takes them as objects
        if shape.type_name == "string" and isinstance(value, bool):
            return str(value).lower()  # `DetectChanges: false` in YAML: CloudFormation passes "false"
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name in ("double", "float"):
            return float(value)
        if shape.type_name == "boolean" and isinstance(value, str):
            return value.lower() == "true"
        return value

    params = convert(properties, shape, "")
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise StandInError(f"{resource_type}: {service} {operation} would refuse it: {report.generate_report()}")
    return params


def without(properties: dict, *cloudformation_only: str) -> dict:
    """The properties less those CloudFormation keeps to itself (not part of the API call)."""
    return {key: value for key, value in properties.items() if key not in cloudformation_only}


class StandIn(CloudFormationModel):
    """A created resource: what Ref gives (physical_resource_id) and what !GetAtt reads (attributes). moto looks
    models up among CloudFormationModel's direct subclasses, so each stand-in names it among its bases too."""

    aws_type = ""
    attribute_names: tuple = ()

    def __init__(self, physical_resource_id: str, **attributes):
        self.physical_resource_id = physical_resource_id
        self.attributes = attributes

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.aws_type

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attribute_names

    def get_cfn_attribute(self, attribute_name: str):
        return self.attributes[attribute_name]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                        **kwargs):
        return cls.create(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        cls.delete(original_resource, account_id, region_name)
        return cls.create(new_resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        pass

    @classmethod
    def delete(cls, resource, account_id, region_name):
        """Before an update creates the resource again; most stand-ins' create overwrites in place."""


# moto lacks AWS::CodeBuild::Project in CloudFormation; its CreateProject also refuses the CODEPIPELINE
# source and artifacts that have no location, and Lambda compute types, which AWS accepts.
class CodeBuildProject(StandIn, CloudFormationModel):
    attribute_names = ("Arn",)

    aws_type = "AWS::CodeBuild::Project"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        params = api_input(cls.cloudformation_type(), "codebuild", "CreateProject", properties)
        metadata = codebuild_backends[account_id][region_name].create_project(
            project_name=params["name"], description=params.get("description"), project_source=params["source"],
            artifacts=params["artifacts"], environment=params["environment"], service_role=params["serviceRole"],
            tags=params.get("tags"), cache=params.get("cache"), timeout=params.get("timeoutInMinutes"),
            queued_timeout=params.get("queuedTimeoutInMinutes"), source_version=params.get("sourceVersion"),
            logs_config=params.get("logsConfig"), vpc_config=params.get("vpcConfig"))
        return cls(params["name"], Arn=metadata["arn"])

    @classmethod
    def delete(cls, resource, account_id, region_name):
        codebuild_backends[account_id][region_name].delete_project(resource.physical_resource_id)


# moto lacks AWS::CodePipeline::Pipeline in CloudFormation; its CreatePipeline and StartPipelineExecution
# work, so the stand-in creates the pipeline there and the webhook starts it.
class CodePipelinePipeline(StandIn, CloudFormationModel):
    attribute_names = ("Version",)

    aws_type = "AWS::CodePipeline::Pipeline"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        pipeline = without(properties, "Tags", "RestartExecutionOnUpdate", "DisableInboundStageTransitions")
        pipeline.setdefault("Name", name)
        params = api_input(cls.cloudformation_type(), "codepipeline", "CreatePipeline", {"pipeline": pipeline})
        created, _ = codepipeline_backends[account_id][region_name].create_pipeline(params["pipeline"], [])
        return cls(created["name"], Version=str(created.get("version", 1)))

    @classmethod
    def delete(cls, resource, account_id, region_name):
        codepipeline_backends[account_id][region_name].delete_pipeline(resource.physical_resource_id)


# moto lacks AWS::SecretsManager::Secret in CloudFormation. GenerateSecretString is CloudFormation's: the value
# comes from GetRandomPassword, as CloudFormation's own handler does.
class SecretsManagerSecret(StandIn, CloudFormationModel):
    aws_type = "AWS::SecretsManager::Secret"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        backend = secretsmanager_backends[account_id][region_name]
        secret = without(properties, "GenerateSecretString", "ReplicaRegions")
        secret.setdefault("Name", f"{name}-{uuid.uuid4().hex[:12]}")
        generate = properties.get("GenerateSecretString")
        if generate is not None:
            rules = api_input(cls.cloudformation_type(), "secretsmanager", "GetRandomPassword", generate)
            secret["SecretString"] = json.loads(backend.get_random_password(
                password_length=rules.get("PasswordLength", 32), exclude_characters=rules.get("ExcludeCharacters", ""),
                exclude_numbers=rules.get("ExcludeNumbers", False),
                exclude_punctuation=rules.get("ExcludePunctuation", False),
                exclude_uppercase=rules.get("ExcludeUppercase", False),
                exclude_lowercase=rules.get("ExcludeLowercase", False), include_space=rules.get("IncludeSpace", False),
                require_each_included_type=rules.get("RequireEachIncludedType", True)))["RandomPassword"]
        params = api_input(cls.cloudformation_type(), "secretsmanager", "CreateSecret", secret)
        created = json.loads(backend.create_secret(
            name=params["Name"], secret_string=params.get("SecretString"), secret_binary=None,
            description=params.get("Description"), tags=params.get("Tags"), kms_key_id=params.get("KmsKeyId"),
            client_request_token=None, replica_regions=[], force_overwrite=False))
        return cls(created["ARN"])


# moto lacks the API Gateway v2 types in CloudFormation; its apigatewayv2 backend keeps them.
class HttpApi(StandIn, CloudFormationModel):
    attribute_names = ("ApiEndpoint", "ApiId")

    aws_type = "AWS::ApiGatewayV2::Api"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        params = api_input(cls.cloudformation_type(), "apigatewayv2", "CreateApi", without(properties, "Tags"))
        api = apigatewayv2_backends[account_id][region_name].create_api(
            api_key_selection_expression=params.get("ApiKeySelectionExpression"),
            cors_configuration=params.get("CorsConfiguration"), description=params.get("Description"),
            disable_schema_validation=params.get("DisableSchemaValidation"),
            disable_execute_api_endpoint=params.get("DisableExecuteApiEndpoint"), name=params["Name"],
            protocol_type=params["ProtocolType"], route_selection_expression=params.get("RouteSelectionExpression"),
            tags={}, version=params.get("Version"))
        return cls(api.api_id, ApiId=api.api_id, ApiEndpoint=api.api_endpoint)


class ApiChild(StandIn):
    """An Integration, Route or Stage: validated, then created under its API."""

    operation = ""
    id_key = ""

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        params = api_input(cls.cloudformation_type(), "apigatewayv2", cls.operation, properties)
        backend = apigatewayv2_backends[account_id][region_name]
        created = cls.create_in(backend, params)
        return cls(getattr(created, cls.id_key))


class HttpApiIntegration(ApiChild, CloudFormationModel):
    operation, id_key = "CreateIntegration", "id"

    aws_type = "AWS::ApiGatewayV2::Integration"

    @staticmethod
    def create_in(backend, params):
        return backend.create_integration(
            api_id=params["ApiId"], connection_id=None, connection_type=None, content_handling_strategy=None,
            credentials_arn=None, description=None, integration_method=params.get("IntegrationMethod"),
            integration_type=params["IntegrationType"], integration_uri=params.get("IntegrationUri"),
            passthrough_behavior=None, payload_format_version=params.get("PayloadFormatVersion"),
            integration_subtype=None, request_parameters=None, request_templates=None,
            response_parameters=None, template_selection_expression=None,
            timeout_in_millis=params.get("TimeoutInMillis"), tls_config=None)


class HttpApiRoute(ApiChild, CloudFormationModel):
    operation, id_key = "CreateRoute", "route_id"

    aws_type = "AWS::ApiGatewayV2::Route"

    @staticmethod
    def create_in(backend, params):
        return backend.create_route(
            api_id=params["ApiId"], api_key_required=False, authorization_scopes=None,
            authorization_type=params.get("AuthorizationType"), authorizer_id=None, model_selection_expression=None,
            operation_name=None, request_models=None, request_parameters=None, route_key=params["RouteKey"],
            route_response_selection_expression=None, target=params.get("Target"))


class HttpApiStage(ApiChild, CloudFormationModel):
    operation, id_key = "CreateStage", "name"

    aws_type = "AWS::ApiGatewayV2::Stage"

    @staticmethod
    def create_in(backend, params):
        api_id = params.pop("ApiId")
        return backend.create_stage(api_id, {key[0].lower() + key[1:]: value for key, value in params.items()})


# moto lacks AWS::CloudWatch::Alarm in CloudFormation; PutMetricAlarm keeps it.
class MetricAlarm(StandIn, CloudFormationModel):
    attribute_names = ("Arn",)

    aws_type = "AWS::CloudWatch::Alarm"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        alarm = dict(properties)
        alarm.setdefault("AlarmName", name)
        params = api_input(cls.cloudformation_type(), "cloudwatch", "PutMetricAlarm", alarm)
        created = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=params["AlarmName"], namespace=params.get("Namespace"), metric_name=params.get("MetricName"),
            comparison_operator=params["ComparisonOperator"], evaluation_periods=params["EvaluationPeriods"],
            period=params.get("Period"), threshold=params.get("Threshold"), statistic=params.get("Statistic"),
            description=params.get("AlarmDescription"), dimensions=params.get("Dimensions", []),
            alarm_actions=params.get("AlarmActions", []), treat_missing_data=params.get("TreatMissingData"))
        return cls(created.name, Arn=created.alarm_arn)


# moto lacks AWS::ECR::RegistryPolicy and AWS::ECR::ReplicationConfiguration in CloudFormation.
class EcrRegistryPolicy(StandIn, CloudFormationModel):
    aws_type = "AWS::ECR::RegistryPolicy"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        params = api_input(cls.cloudformation_type(), "ecr", "PutRegistryPolicy", properties)
        ecr_backends[account_id][region_name].put_registry_policy(params["policyText"])
        return cls(account_id)


class EcrReplicationConfiguration(StandIn, CloudFormationModel):
    aws_type = "AWS::ECR::ReplicationConfiguration"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        params = api_input(cls.cloudformation_type(), "ecr", "PutReplicationConfiguration", properties)
        ecr_backends[account_id][region_name].put_replication_configuration(params["replicationConfiguration"])
        return cls(account_id)


# moto skips AWS::S3::BucketPolicy and AWS::SQS::QueueInlinePolicy in CloudFormation.
class S3BucketPolicy(StandIn, CloudFormationModel):
    aws_type = "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        policy = {"Bucket": properties.get("Bucket"), "Policy": properties.get("PolicyDocument")}
        params = api_input(cls.cloudformation_type(), "s3", "PutBucketPolicy", policy)
        s3_backends[account_id]["aws"].put_bucket_policy(params["Bucket"], params["Policy"].encode())
        return cls(params["Bucket"])


class SqsQueueInlinePolicy(StandIn, CloudFormationModel):
    aws_type = "AWS::SQS::QueueInlinePolicy"

    @classmethod
    def create(cls, name, properties, account_id, region_name):
        queue_url = properties.get("Queue")
        policy = {"QueueUrl": queue_url, "Attributes": {"Policy": properties.get("PolicyDocument")}}
        params = api_input(cls.cloudformation_type(), "sqs", "SetQueueAttributes", policy)
        queue_name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        sqs_backends[account_id][region_name].set_queue_attributes(queue_name, params["Attributes"])
        return cls(params["QueueUrl"])


STAND_INS = [CodeBuildProject, CodePipelinePipeline, SecretsManagerSecret, HttpApi, HttpApiIntegration, HttpApiRoute,
             HttpApiStage, MetricAlarm, EcrRegistryPolicy, EcrReplicationConfiguration, S3BucketPolicy,
             SqsQueueInlinePolicy]


def change_sets_as_on_aws():
    """Two gaps in moto's ExecuteChangeSet, what `aws cloudformation deploy` uses.

    It applies the change set's resources to a stack it created with an empty template, and keeps the outputs
    of that empty template: none. Here they are computed from the change set's template once it is applied,
    as CreateStack and UpdateStack do from theirs.

    A resource that fails (a stand-in's StandInError) fails the call itself. On AWS the call succeeds and the
    stack ends in ROLLBACK_COMPLETE (a first create) or UPDATE_ROLLBACK_COMPLETE, with an event giving the
    reason; here too, so that `aws cloudformation deploy` reports a failed stack. moto does not roll back:
    what was created before the failure stays."""
    backend = type(cloudformation_backends["123456789012"]["us-east-1"])
    original = backend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = next(c for c in self.change_sets.values()
                          if change_set_name in (c.change_set_id, c.change_set_name))
        stack = change_set.stack
        try:
            original(self, change_set_name, stack_name)
        except StandInError as error:
            creating = change_set.change_set_type == "CREATE"
            stack._add_stack_event("CREATE_FAILED" if creating else "UPDATE_FAILED", resource_status_reason=str(error))
            stack.status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
            change_set.execution_status = "EXECUTE_FAILED"
            return
        stack.template_dict = change_set.template_dict
        stack.output_map = stack._create_output_map()

    backend.execute_change_set = execute_change_set


def update_only_what_changed():
    """A re-run of `aws cloudformation deploy` re-sends each parameter its command line leaves out with
    UsePreviousValue, which moto resolves to the previous value with the template's default filled in and
    typed (90, not "90"); moto compares that with the previous input, where a default is absent, and updates
    every resource that reads such a parameter — a log group among them, which moto cannot update: it becomes
    None and the next !GetAtt of it fails the stack. Here a parameter counts as changed only when its value
    differs from the value the stack resolved, as on AWS. And moto updates a resource for a changed parameter
    only if it reads it with Ref: here ${Name} in an Fn::Sub counts too (a new ecr-promote binary's key)."""
    diff = parsing.ResourceMap.build_resource_diff

    def as_text(value):
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    def build_resource_diff(self, other_template, parameters=None):
        changed = {key: value for key, value in (parameters or {}).items()
                   if as_text(value) != as_text(self.resolved_parameters.get(key))}
        return diff(self, other_template, changed)

    parsing.ResourceMap.build_resource_diff = build_resource_diff
    references = parsing.get_references_from_template

    def get_references_from_template(template):
        return references(template) + re.findall(r"\$\{([\w:]+)\}", json.dumps(template))

    parsing.get_references_from_template = get_references_from_template


class CodeConnections:
    """moto has no CodeConnections API (the AWS CLI's JSON protocol: X-Amz-Target …CodeConnections_20231201.<op>;
    boto3's newer CBOR protocol is not answered). This keeps
    connections per account and region in memory. On AWS a new connection is PENDING until someone completes
    the GitHub handshake in the console; here the handshake is the tag `standin:handshake` = `done` given to
    CreateConnection."""

    TARGET = re.compile(r"(?:^|\.)CodeConnections_20231201\.(\w+)$")

    def __init__(self, app):
        self.app = app
        self.connections = {}  # (account, region) → [connection]

    def __call__(self, environ, start_response):
        target = self.TARGET.search(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target:
            return self.app(environ, start_response)
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        access_key = re.search(r"Credential=([^/]+)/", authorization)
        region = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", authorization)
        scope = (get_account_id_from(access_key.group(1) if access_key else ""),
                 region.group(1) if region else "us-east-1")
        status, answer = self.answer(target.group(1), body, scope)
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.0"),
                                ("Content-Length", str(len(payload)))])
        return [payload]

    def answer(self, operation, body, scope):
        connections = self.connections.setdefault(scope, [])
        account, region = scope
        if operation == "CreateConnection":
            done = {"Key": "standin:handshake", "Value": "done"} in body.get("Tags", [])
            arn = f"arn:aws:codeconnections:{region}:{account}:connection/{uuid.uuid4()}"
            connections.append({"ConnectionName": body["ConnectionName"], "ConnectionArn": arn,
                                "ProviderType": body.get("ProviderType", "GitHub"), "OwnerAccountId": account,
                                "ConnectionStatus": "AVAILABLE" if done else "PENDING"})
            return "200 OK", {"ConnectionArn": arn}
        if operation == "ListConnections":
            wanted = body.get("ProviderTypeFilter")
            return "200 OK", {"Connections": [c for c in connections
                                              if not wanted or c["ProviderType"] == wanted]}
        if operation == "GetConnection":
            for connection in connections:
                if connection["ConnectionArn"] == body.get("ConnectionArn"):
                    return "200 OK", {"Connection": connection}
            return "400 Bad Request", {"__type": "ResourceNotFoundException",
                                       "Message": f"no connection {body.get('ConnectionArn')}"}
        return "400 Bad Request", {"__type": "UnknownOperationException",
                                   "Message": f"the stand-in does not answer {operation}"}


def templates_from_this_server():
    """A template over 51,200 bytes goes through S3: `aws cloudformation deploy --s3-bucket` uploads it and
    passes its URL, which, with the endpoint this server, is path style on a loopback address
    (http://127.0.0.1:PORT/bucket/key). moto reads the bucket from the path only for `localhost`, and from the
    first label of the host otherwise ("127"); here any URL on this server is read path style."""
    import moto.cloudformation.responses as responses
    import moto.cloudformation.utils as utils
    original = utils.get_stack_from_s3_url

    def get_stack_from_s3_url(template_url, account_id, partition):
        host = template_url.split("/")[2].split(":")[0]
        if host in ("127.0.0.1", "::1", "[::1]"):
            template_url = template_url.replace(host, "localhost", 1)
        return original(template_url, account_id=account_id, partition=partition)

    responses.get_stack_from_s3_url = get_stack_from_s3_url


def serve():
    change_sets_as_on_aws()
    update_only_what_changed()
    templates_from_this_server()
    # moto_server builds its WSGI app inside main(); wrap the app it serves.
    import moto.server as server
    make_app = server.DomainDispatcherApplication

    class WithCodeConnections(make_app):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.codeconnections = CodeConnections(super().__call__)

        def __call__(self, environ, start_response):
            return self.codeconnections(environ, start_response)

    server.DomainDispatcherApplication = WithCodeConnections
    moto_server(sys.argv[1:])


if _RUN_AS == "__main__":
    assert all(model.cloudformation_type() for model in STAND_INS)
    serve()
