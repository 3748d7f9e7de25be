data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  table_name  = "${var.name_prefix}-registry"
  bucket_name = "${var.name_prefix}-artifacts-${data.aws_caller_identity.current.account_id}"
  partition   = data.aws_partition.current.partition
  region      = data.aws_region.current.name
  account_id  = data.aws_caller_identity.current.account_id
  account_arn = "arn:${local.partition}:iam::${local.account_id}:root"
}

################################################################################
# KMS key: registry table, artifacts, logs and function environments
################################################################################

locals {
  kms_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Action    = "kms:*"
        Resource  = "*"
        Principal = { AWS = local.account_arn }
      },
      {
        Sid      = "CloudWatchLogsEncrypts"
        Effect   = "Allow"
        Action   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource = "*"
        # The service principal ends in the partition's DNS suffix (amazonaws.com.cn in China).
        Principal = { Service = "logs.${local.region}.${data.aws_partition.current.dns_suffix}" }
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:*"
          }
        }
      },
      {
        # CloudWatch publishes the platform's alarms to its SNS topic, encrypted with this key: it must be
        # able to use the key (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html,
        # "compatibility with AWS services"); only for this account's alarms of this platform.
        Sid       = "CloudWatchAlarmsPublish"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*" }
        }
      },
    ]
  })
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} model platform: registry, artifacts, logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = local.kms_policy
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-platform"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Registry table
################################################################################

resource "aws_dynamodb_table" "this" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = var.table_keys.partition_key
  range_key                   = var.table_keys.sort_key
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = var.table_keys.partition_key
    type = "S"
  }

  attribute {
    name = var.table_keys.sort_key
    type = "N"
  }

  attribute {
    name = var.table_keys.catalog_key
    type = "S"
  }

  # Sparse: only the models' summary items carry the catalog key, so listing models is a Query by name
  # in pages, not a Scan of every version (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html).
  global_secondary_index {
    name            = var.table_keys.catalog_index
    hash_key        = var.table_keys.catalog_key
    range_key       = var.table_keys.partition_key
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags
}

################################################################################
# Artifact bucket
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket owned by the platform's account baseline, not this module.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice left to the platform team; versioning protects artifacts here.
  #checkov:skip=CKV2_AWS_62:Artifacts are read by their registry key; no consumer listens for object events.
  bucket        = local.bucket_name
  force_destroy = !var.deletion_protection
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count = var.artifact_lifecycle == null ? 0 : 1

  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-replaced-artifact-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.artifact_lifecycle.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.artifact_lifecycle.abort_incomplete_multipart_upload_days
    }
  }
}

locals {
  bucket_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Action    = "s3:*"
      Principal = "*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_s3_bucket_policy" "this" {
  count = var.require_tls ? 1 : 0

  bucket = aws_s3_bucket.this.id
  policy = local.bucket_policy

  depends_on = [aws_s3_bucket_public_access_block.this]
}
