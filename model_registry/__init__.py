"""Serverless model registry: version records, DynamoDB store, S3 artifacts, loaders and rollouts."""

__version__ = "0.1.0"
