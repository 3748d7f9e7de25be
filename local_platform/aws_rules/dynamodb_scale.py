"""moto's DynamoDB transactions at registry scale: same all-or-nothing result, without copying tables.

moto backs up every table a ``TransactWriteItems`` touches with ``copy.deepcopy`` before it starts,
so each registration (one transaction) costs time in proportion to the whole registry: at ~1,500
models a registration took over the 5 s client timeout here, which a 10,000-model catalogue needs.
This keeps moto's code and its answers; only the backup changes: the items the transaction names are
saved, and put back (or removed) when it is cancelled, as DynamoDB's own isolation guarantees
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_saving = threading.local()


def install() -> None:
    """Patch moto's DynamoDB backend (before its server starts, or in-process)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_item_backup", False):
        return

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(_saving, "active", False):
            return self  # the transaction's backup: the touched items are saved instead
        clone = copy.copy(self)
        memo[id(self)] = clone
        for name, value in vars(self).items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table_name = op.get("TableName")
            if table_name not in self.tables:
                continue
            table = self.tables[table_name]
            key = op.get("Key")
            if key is None and "Item" in op:
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            if key is None:
                continue
            current = self.get_item(table_name, key)
            saved.append(
                (table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
            )
        _saving.active = True
        try:
            original(self, transact_items)
        except Exception:
            _saving.active = False
            for table_name, key, attributes in saved:
                if attributes is None:
                    table = self.tables[table_name]
                    if self.get_item(table_name, key) is not None:
                        range_key = key.get(table.range_key_attr) if table.range_key_attr else None
                        table.delete_item(
                            DynamoType(key[table.hash_key_attr]), DynamoType(range_key) if range_key else None
                        )
                else:
                    self.tables[table_name].put_item(attributes)
            raise
        finally:
            _saving.active = False

    transact_write_items._item_backup = True
    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items
