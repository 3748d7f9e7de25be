output "table_name" {
  description = "Name of the registry table."
  value       = try(aws_dynamodb_table.this.name, "")
}

output "table_arn" {
  description = "ARN of the registry table."
  value       = try(aws_dynamodb_table.this.arn, "")
}

output "bucket_name" {
  description = "Name of the artifact bucket."
  value       = try(aws_s3_bucket.this.id, "")
}

output "bucket_arn" {
  description = "ARN of the artifact bucket."
  value       = try(aws_s3_bucket.this.arn, "")
}

output "kms_key_arn" {
  description = "ARN of the platform KMS key."
  value       = try(aws_kms_key.this.arn, "")
}

output "kms_key_policy_json" {
  description = "The platform key's policy (account administration, CloudWatch Logs, CloudWatch alarm notifications)."
  value       = local.kms_policy
}
