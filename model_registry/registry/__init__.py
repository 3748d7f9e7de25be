"""The model registry: version records in DynamoDB, artifacts in S3 verified by sha256, the register
path (and ONNX compilation) and the verified load the serving side uses."""
