mock_provider "aws" {
  source = "../../tests"
}

variables {
  name_prefix = "mlp"
  table_keys  = { partition_key = "model_name", sort_key = "version" }
}

run "encrypted_and_recoverable" {
  command = apply

  assert {
    condition     = aws_dynamodb_table.this.point_in_time_recovery[0].enabled
    error_message = "point-in-time recovery must be on"
  }

  assert {
    condition     = aws_dynamodb_table.this.server_side_encryption[0].enabled && aws_dynamodb_table.this.server_side_encryption[0].kms_key_arn == aws_kms_key.this.arn
    error_message = "the table must be encrypted with the platform key"
  }

  assert {
    condition     = aws_dynamodb_table.this.hash_key == "model_name" && aws_dynamodb_table.this.range_key == "version" && aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "table keys from the contract, deletion protection on by default"
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "KMS key rotation must be on"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "artifacts must be KMS-encrypted"
  }

  assert {
    condition     = aws_s3_bucket_public_access_block.this.block_public_acls && aws_s3_bucket_public_access_block.this.restrict_public_buckets
    error_message = "public access must be blocked"
  }

  assert {
    condition     = jsondecode(aws_s3_bucket_policy.this[0].policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false" && jsondecode(aws_s3_bucket_policy.this[0].policy).Statement[0].Effect == "Deny"
    error_message = "the bucket must deny requests without TLS"
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "bucket versioning must be on"
  }
}
