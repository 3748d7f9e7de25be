"""AWS rules the local emulator enforces on top of moto, so the local target refuses what AWS refuses.

moto stores what the AWS APIs are given but is lenient where AWS is strict; the platform relies on
some of those rules (quotas, states, dimension sets, revision ids), so breaking one must fail a test
here rather than on the first deployment. Each module cites the documentation of the rules it adds:
:mod:`~local_platform.aws_rules.lambda_rules` and
:mod:`~local_platform.aws_rules.cloudwatch_rules`; :mod:`~local_platform.aws_rules.dynamodb_scale` keeps
moto's DynamoDB transactions from slowing with the table's size. :mod:`~local_platform.aws_rules.control`
is the client side of the emulator's local-only calls (what AWS services do among themselves).
"""

from __future__ import annotations


def install() -> None:
    """Apply every rule to moto's services (before its server starts, or in-process)."""
    from local_platform.aws_rules import cloudwatch_rules, dynamodb_scale, lambda_rules

    lambda_rules.install()
    cloudwatch_rules.install()
    dynamodb_scale.install()
