"""The model platform's library.

- ``core``: the facts shared with Terraform and the handler (``contract.json``), settings, errors,
  records and the AWS clients. Runs everywhere.
- ``registry``: the DynamoDB registry and the S3 artifact store (``store``, ``artifacts``), the read
  side (``loading``: look up, fetch, verify, deserialise; runs in Lambda) and the write side
  (``service``: register, ``optimize``: compile to ONNX; operators' machines and CI only).
- ``serving``: loaders, request codecs and the model server. Runs in Lambda (with ``core`` and the
  registry's read side it is all the function zip holds besides ``functions/``).
- ``rollout``: traffic control (a pure planner, the Lambda and CloudWatch clients, the orchestrator).
- ``cli``: ``modelctl``. ``rollout`` and ``cli`` run on an operator's machine only.

Outside the library: ``functions/`` (the Lambda handler), ``tooling/`` (build and Terraform driver),
``local_platform/`` (the AWS emulator and local data plane) and ``examples/`` (example models).
"""

__version__ = "0.1.0"
