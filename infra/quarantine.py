"""The quarantine: an S3 bucket that keeps the body of every rejected message, and its access log.

A rejected submission is acknowledged, never retried and never published, but its body is kept (the
object format is ``telemetry_adapter.quarantine_format``: one gzip JSON Lines object per batch under
``rejected/YYYY/MM/DD/HH/``), so that a sensor release the adapter does not understand yet loses
nothing and an operator can replay it once the adapter does (``python -m ops quarantine replay``).

* Names: ``telemetry-adapter-<stage>-quarantine-<unique>``. Bucket names are global across every AWS
  account, so the stage cannot make one unique on its own; ``<unique>`` is the first group of the
  stack's id, fixed for the stack's life and new for a stack created again, so a retry after a failed
  first create (or a new stack after a deleted one whose bucket was kept) never collides.
* Protection: encrypted with S3-managed keys (like the queues: no key grants for the writer or the
  operators), TLS 1.2 or later only, every kind of public access blocked, ACLs disabled (the bucket
  owner owns every object). No versioning: every object is written once under a key of its own.
* Expiry: objects expire ``quarantineRetentionDays`` after they were written.
* Server access logs go to a second bucket of the stack, kept a year: the quarantine holds raw
  telemetry (command lines, user names), and the log says who read which object. The writer is the
  processor alone, with ``s3:PutObject`` on ``rejected/*`` and nothing else.
* Not in the dev stage: S3 delivers access logs with a delay, after CDK's auto-delete has emptied the
  log bucket on ``cdk destroy``, and the bucket's deletion then fails with ``BucketNotEmpty``. The
  disposable stage holds test data, so it has no access log and no log bucket.
* Removal (``infra/lifecycle.py``): the dev stage's bucket, emptied first, goes with its stack; any
  other stage's are kept when the stack is deleted (they still expire object by object).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.lifecycle import kept_unless_dev
from infra.nag import acknowledge
from infra.naming import Names
from infra.settings import DeploySettings
from telemetry_adapter.quarantine_format import KEY_PREFIX

ACCESS_LOG_RETENTION_DAYS = 365
"""How long the quarantine's access log is kept: a read found out about months later can be traced."""
ACCESS_LOG_PREFIX = "quarantine/"
INCOMPLETE_UPLOAD_DAYS = 1


def stack_unique_suffix() -> str:
    """The first group of the stack id's UUID (8 hex digits): unique to this stack, stable for its life."""
    uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.select(0, Fn.split("-", uuid))


class QuarantineStorage(Construct):
    """The quarantine ``bucket`` and the ``access_log_bucket`` that records every request to it (None in
    the dev stage)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, names: Names) -> None:
        super().__init__(scope, construct_id)
        unique = stack_unique_suffix()
        self.bucket = self._bucket(
            "Bucket",
            settings,
            bucket_name=names.bucket("quarantine", unique),
            expiration_days=settings.quarantine_retention_days,
        )
        self.access_log_bucket: s3.Bucket | None = None
        if settings.is_dev:
            acknowledge(
                self.bucket,
                (
                    "AwsSolutions-S1",
                    "Risk accepted for the dev stage only: its quarantine holds test data, and an access-log bucket "
                    "cannot be deleted cleanly with the stack (S3 delivers logs after CDK's auto-delete has "
                    "emptied it, and the deletion fails with BucketNotEmpty). Every other stage logs requests.",
                ),
            )
            return
        self.access_log_bucket = self._bucket(
            "AccessLogBucket",
            settings,
            bucket_name=names.bucket("access-logs", unique),
            expiration_days=ACCESS_LOG_RETENTION_DAYS,
        )
        acknowledge(
            self.access_log_bucket,
            (
                "AwsSolutions-S1",
                "This bucket is itself the server access log of the quarantine bucket; logging it in turn "
                "would only log the log deliveries.",
            ),
        )
        self._log_requests(self.bucket, self.access_log_bucket)

    @staticmethod
    def _log_requests(source: s3.Bucket, target: s3.Bucket) -> None:
        """Server access logging of ``source`` into ``target``, through the target's bucket policy.

        Written out rather than with the L2 ``server_access_logs_bucket``, whose choice between an ACL
        (impossible with ACLs disabled) and a bucket policy depends on a feature flag of the app.
        """
        cfn = source.node.default_child
        if not isinstance(cfn, s3.CfnBucket):
            raise AssertionError("unexpected S3 L1 resource")
        cfn.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=target.bucket_name, log_file_prefix=ACCESS_LOG_PREFIX
        )
        target.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3ServerAccessLogs",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[target.arn_for_objects(f"{ACCESS_LOG_PREFIX}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": source.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )

    def _bucket(
        self, construct_id: str, settings: DeploySettings, *, bucket_name: str, expiration_days: int
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire",
                    expiration=Duration.days(expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                )
            ],
            removal_policy=kept_unless_dev(settings),
            auto_delete_objects=settings.is_dev,
        )

    @property
    def rejected_objects_arn(self) -> str:
        """``arn:...:<bucket>/rejected/*``: the only objects the processor may write."""
        return self.bucket.arn_for_objects(f"{KEY_PREFIX}*")

    def grant_write_rejected(self, grantee: iam.IGrantable) -> None:
        """``s3:PutObject`` on ``rejected/*`` only: the writer can neither read, list, nor delete."""
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"], resource_arns=[self.rejected_objects_arn])
