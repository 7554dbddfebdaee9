"""What the operators' tool (``python -m ops``) may do, as one managed policy to attach to the people paged.

Exactly the calls the tool makes, on this stack's resources only: read the stack's outputs; peek into
and redrive from the dead-letter queue (receive, make visible again, delete after the copy), send to
the submissions queue (redrive, replay); list and read the quarantine's ``rejected/`` objects; invoke
the health function (its operations read the ledger, read-only) and call its URL, as the runbook
does. Nothing writes to the quarantine or the ledger, and nothing reaches the stream. CloudFormation
names the policy (IAM is global, so a name from the stage alone would collide between two regions).
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.ingest import IngestQueues
from infra.nag import acknowledge, logical_id
from infra.quarantine import QuarantineStorage
from telemetry_adapter.quarantine_format import KEY_PREFIX


class OperatorAccess(Construct):
    """The managed ``policy`` for the operators' tool."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: IngestQueues,
        quarantine: QuarantineStorage,
        health: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        bucket = quarantine.bucket
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"The Telemetry Adapter operators' tool on stack {Stack.of(self).stack_name}",
            statements=[
                iam.PolicyStatement(
                    sid="ReadStackOutputs", actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]
                ),
                iam.PolicyStatement(
                    sid="PeekAndRedriveDeadLetters",
                    actions=[
                        "sqs:ReceiveMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                    ],
                    resources=[queues.dead_letter_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="SendToSubmissions",
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
                    resources=[queues.queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="ListQuarantine",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{KEY_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    sid="ReadQuarantine", actions=["s3:GetObject"], resources=[quarantine.rejected_objects_arn]
                ),
                iam.PolicyStatement(
                    sid="AskTheHealthFunction", actions=["lambda:InvokeFunction"], resources=[health.function_arn]
                ),
                # The health URL, called with SigV4 as the runbook shows; Lambda authorises it with
                # InvokeFunctionUrl (and, for URLs created since October 2025, InvokeFunction as well).
                iam.PolicyStatement(
                    sid="CallTheHealthUrl",
                    actions=["lambda:InvokeFunctionUrl"],
                    resources=[health.function_arn],
                    conditions={"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
                ),
            ],
        )
        acknowledge(
            self.policy,
            (
                f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/rejected/*]",
                "Risk accepted: operators may read any rejected body in the quarantine (that is what it is "
                "kept for); object keys are made by the processor, so no narrower resource exists.",
            ),
        )
