"""The emulator's DynamoDB transactions keep all-or-nothing semantics without copying the table."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_platform.aws_rules import dynamodb_scale


@pytest.fixture
def table() -> object:
    dynamodb_scale.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"pk": {"S": "summary"}, "latest": {"N": "1"}})
        yield client


def _items(client) -> dict:  # type: ignore[no-untyped-def]
    return {i["pk"]["S"]: i for i in client.scan(TableName="t")["Items"]}


def _register_v2(client, expected_latest: str) -> None:  # type: ignore[no-untyped-def]
    """A registration's transaction: the new item, and the summary conditional on the latest it read."""
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "v2"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "summary"}},
                    "UpdateExpression": "SET latest = :new",
                    "ConditionExpression": "latest = :expected",
                    "ExpressionAttributeValues": {":new": {"N": "2"}, ":expected": {"N": expected_latest}},
                }
            },
        ]
    )


def test_a_cancelled_transaction_changes_nothing(table) -> None:  # type: ignore[no-untyped-def]
    before = _items(table)
    with pytest.raises(ClientError, match="TransactionCanceled"):
        _register_v2(table, expected_latest="7")
    assert _items(table) == before  # the Put that ran first was taken back


def test_a_committed_transaction_writes_every_item(table) -> None:  # type: ignore[no-untyped-def]
    _register_v2(table, expected_latest="1")
    items = _items(table)
    assert set(items) == {"summary", "v2"} and items["summary"]["latest"] == {"N": "2"}
