mock_provider "aws" {
  source = "../../tests"
}

variables {
  name_prefix = "mlp"
  table_keys  = { partition_key = "model_name", sort_key = "version", catalog_index = "catalog", catalog_key = "catalog" }
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

# Service principals end in the partition's DNS suffix: amazonaws.com.cn in the China regions.
run "service_principals_follow_the_partition" {
  command = apply

  override_data {
    target = data.aws_partition.current
    values = { partition = "aws-cn", dns_suffix = "amazonaws.com.cn" }
  }

  override_data {
    target = data.aws_region.current
    values = { name = "cn-north-1" }
  }

  assert {
    condition     = jsondecode(output.kms_key_policy_json).Statement[1].Principal.Service == "logs.cn-north-1.amazonaws.com.cn"
    error_message = "the CloudWatch Logs principal must use the partition's DNS suffix"
  }

  assert {
    condition     = startswith(jsondecode(output.kms_key_policy_json).Statement[1].Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"], "arn:aws-cn:logs:cn-north-1:")
    error_message = "log group ARNs must use the partition"
  }
}

run "replaced_artifacts_expire_unless_lifecycle_is_off" {
  command = apply

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule).noncurrent_version_expiration[0].noncurrent_days == 90 && one(aws_s3_bucket_lifecycle_configuration.this[0].rule).abort_incomplete_multipart_upload[0].days_after_initiation == 7
    error_message = "by default, replaced artifact versions expire after 90 days and incomplete uploads are aborted after 7"
  }
}

run "no_lifecycle_rules_when_lifecycle_is_null" {
  command = apply

  variables {
    artifact_lifecycle = null
  }

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.this) == 0
    error_message = "artifact_lifecycle = null must leave the bucket without lifecycle rules"
  }
}
