output "platform_name" {
  description = "Platform name (MODEL_PLATFORM_NAME for modelctl)."
  value       = var.name_prefix
}

output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.api.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = module.api.api_id
}

output "table_name" {
  description = "Registry table (MODEL_REGISTRY_TABLE)."
  value       = module.registry.table_name
}

output "bucket_name" {
  description = "Artifact bucket (MODEL_ARTIFACT_BUCKET)."
  value       = module.registry.bucket_name
}

output "kms_key_arn" {
  description = "Platform KMS key."
  value       = module.registry.kms_key_arn
}

output "functions" {
  description = "Per model: function name and ARN, alias name and ARN, log group, alarms."
  value = {
    for name, endpoint in module.model_endpoint : name => {
      function_name  = endpoint.function_name
      function_arn   = endpoint.function_arn
      alias_name     = endpoint.alias_name
      alias_arn      = endpoint.alias_arn
      log_group_name = endpoint.log_group_name
      alarm_names    = endpoint.alarm_names
    }
  }
}

output "route_keys" {
  description = "Route keys per model."
  value       = module.api.route_keys
}

output "alarm_topic_arn" {
  description = "SNS topic the models' alarms notify (subscribe to it, or pass alarm_email_addresses)."
  value       = local.alarm_topic_arn
}

output "pool_function" {
  description = "The pooled tier's function and live alias (null when pool.enabled is false)."
  value = var.pool.enabled ? {
    function_name = module.pool[0].function_name
    alias_arn     = module.pool[0].alias_arn
  } : null
}
