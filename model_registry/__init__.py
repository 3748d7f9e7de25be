"""The model platform's library.

- ``core``: the facts shared with Terraform and the handler (``contract.json``), settings, errors,
  records and the AWS clients. Runs everywhere.
- ``registry``: the DynamoDB registry, the S3 artifact store and the register path. Runs everywhere.
- ``serving``: loaders, request codecs and the model server. Runs in Lambda (with ``core`` and
  ``registry`` it is all the function zip holds besides ``functions/``).
- ``rollout`` and ``cli``: traffic control and ``modelctl``. Run on an operator's machine only.

Outside the library: ``functions/`` (the Lambda handler), ``tooling/`` (build and Terraform driver),
``local_platform/`` (the AWS emulator and local data plane) and ``examples/`` (example models).
"""

__version__ = "0.1.0"
