"""What each stage leaves behind when its stack is deleted, or when its first create fails.

`dev` is disposable: deleting it deletes everything it created (no final snapshot, no kept key or
log). Any other stage keeps what holds data (the queues, the stream, the buckets, the functions'
logs) when the stack is deleted, and removes it when the first create rolls back, so a retry does not
collide with a name the failed attempt used.
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Assembly, Synthesized

KEPT = "RetainExceptOnCreate"


def by_name(synthesized: Synthesized, resource_type: str, key: str) -> dict[str, dict[str, Any]]:
    return {value["Properties"][key]: value for value in synthesized.of_type(resource_type).values()}


def test_the_queues_outlive_a_deleted_stack_outside_dev(assembly: Assembly) -> None:
    for name, policy in (("default", "Delete"), ("prod", KEPT)):
        synthesized = assembly.variants[name]
        stage = synthesized.stack.names.stage
        queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
        for queue in (f"telemetry-adapter-{stage}-submissions", f"telemetry-adapter-{stage}-submissions-dlq"):
            assert queues[queue]["DeletionPolicy"] == policy, (name, queue)
        # The clean-up schedule's dead-letter queue holds schedule events, nothing a later run needs.
        assert queues[f"telemetry-adapter-{stage}-cleanup-dlq"]["DeletionPolicy"] == "Delete"


# CloudFormation's default for a resource without a DeletionPolicy: a database instance leaves a snapshot.
DEFAULT_POLICY = {"AWS::RDS::DBInstance": "Snapshot", "AWS::RDS::DBCluster": "Snapshot"}


def deletion_policy(resource: dict[str, Any]) -> str:
    return str(resource.get("DeletionPolicy", DEFAULT_POLICY.get(resource["Type"], "Delete")))


def test_deleting_dev_deletes_everything_it_created(synthesized: Synthesized) -> None:
    """No final snapshot, no kept key, no kept log or bucket: a dev stack leaves nothing behind."""
    kept = {key: deletion_policy(value) for key, value in synthesized.resources.items()}
    assert {key: policy for key, policy in kept.items() if policy != "Delete"} == {}


def test_every_function_logs_to_a_group_of_the_stack_with_a_retention(variant: Synthesized) -> None:
    """Lambda would otherwise create ``/aws/lambda/<name>`` itself on the first run, outside the stack:
    kept forever, never deleted. CDK's own helper functions (the one that empties the VPC's default
    security group, the dev stage's bucket emptier, the migration's provider framework) included."""
    groups = variant.of_type("AWS::Logs::LogGroup")
    functions = variant.of_type("AWS::Lambda::Function")
    assert len(functions) >= 6
    for logical_id, function in functions.items():
        target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(target, dict), logical_id
        assert "Ref" in target, logical_id
        group = groups[target["Ref"]]
        assert group["Properties"]["RetentionInDays"] > 0, logical_id


def test_the_alarm_topics_key_goes_with_its_stack(variant: Synthesized) -> None:
    """It encrypts alarm notifications in flight only: once the topic is gone, nothing needs it."""
    (key,) = variant.of_type("AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Delete"
    assert key["Properties"]["PendingWindowInDays"] == 7


def test_outside_dev_the_database_leaves_a_final_snapshot(assembly: Assembly) -> None:
    (instance,) = assembly.variants["prod"].of_type("AWS::RDS::DBInstance").values()
    assert deletion_policy(instance) == "Snapshot"


def references(node: Any) -> set[str]:
    """The logical ids a template fragment names with Ref or Fn::GetAtt."""
    if isinstance(node, list):
        return set().union(*(references(value) for value in node))
    if not isinstance(node, dict):
        return set()
    named = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
    if isinstance(node.get("Fn::GetAtt"), list):
        named.add(node["Fn::GetAtt"][0])
    return named.union(*(references(value) for value in node.values()))


def dependencies(synthesized: Synthesized, logical_id: str) -> set[str]:
    """Every resource ``logical_id`` needs, transitively: its DependsOn, Refs and GetAtts."""
    found: set[str] = set()
    pending = [logical_id]
    while pending:
        resource = synthesized.resources[pending.pop()]
        needed = set(resource.get("DependsOn", [])) | references(resource.get("Properties", {}))
        for name in needed & set(synthesized.resources) - found:
            found.add(name)
            pending.append(name)
    return found


def test_a_stack_stuck_in_rollback_failed_deletes_without_leaving_a_name(assembly: Assembly) -> None:
    """A failed first create outside dev stops at ROLLBACK_FAILED: the database's deletion protection
    keeps it, and with it everything it depends on. Those resources are then removed by delete-stack,
    which is not a create, so a RetainExceptOnCreate among them would be kept and collide with the
    retry. Nothing the database needs may be kept."""
    prod = assembly.variants["prod"]
    (instance_id,) = prod.of_type("AWS::RDS::DBInstance")
    needed = dependencies(prod, instance_id)
    assert any(prod.resources[name]["Type"] == "AWS::Logs::LogGroup" for name in needed)  # its PostgreSQL log
    kept = {name: deletion_policy(prod.resources[name]) for name in needed}
    assert {name: policy for name, policy in kept.items() if policy != "Delete"} == {}
