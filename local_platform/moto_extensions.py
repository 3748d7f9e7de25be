"""The emulator: moto's server with the AWS rules it lacks (:mod:`local_platform.aws_rules`).

``python -m local_platform.moto_extensions -H 127.0.0.1 -p PORT`` runs moto's own server after
adding the provisioned-concurrency API, SnapStart, function and version states, revision ids and
quotas to its Lambda service, and exact dimension sets, percentiles and reserved namespaces to its
CloudWatch service.
"""

from __future__ import annotations

import os
import sys

from local_platform.aws_rules import install

# Lambda's default account concurrency quota: every function's reserved concurrency must leave at least
# 100 unreserved (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). moto
# enforces it only when this is set; new accounts may have a lower quota (LOCAL_ACCOUNT_CONCURRENCY).
DEFAULT_ACCOUNT_CONCURRENCY = "1000"


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault(
        "MOTO_LAMBDA_CONCURRENCY_QUOTA",
        os.environ.get("LOCAL_ACCOUNT_CONCURRENCY", DEFAULT_ACCOUNT_CONCURRENCY),
    )
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
