output "function_name" {
  description = "Name of the Lambda function."
  value       = try(aws_lambda_function.this.function_name, "")
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = try(aws_lambda_function.this.arn, "")
}

output "alias_name" {
  description = "Name of the live alias."
  value       = try(aws_lambda_alias.this.name, "")
}

output "alias_arn" {
  description = "ARN of the live alias (the API integration target)."
  value       = try(aws_lambda_alias.this.arn, "")
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = try(aws_iam_role.this.arn, "")
}

output "log_group_name" {
  description = "Log group of the function."
  value       = try(aws_cloudwatch_log_group.this.name, "")
}

output "alarm_names" {
  description = "Alarms on the live alias (errors, throttles, p99 duration)."
  value       = [aws_cloudwatch_metric_alarm.errors.alarm_name, aws_cloudwatch_metric_alarm.throttles.alarm_name, aws_cloudwatch_metric_alarm.p99_duration.alarm_name]
}

output "role_policy_json" {
  description = "The execution role's inline policy (least privilege: this model's items and prefix)."
  value       = local.role_policy
}

output "runtime" {
  description = "Python runtime of the function."
  value       = try(aws_lambda_function.this.runtime, "")
}

output "snap_start_apply_on" {
  description = "SnapStart setting of the function: PublishedVersions, or null when off."
  value       = try(aws_lambda_function.this.snap_start[0].apply_on, null)
}

output "alarm_actions" {
  description = "What the alarms notify (their alarm and OK actions)."
  value       = try(tolist(aws_cloudwatch_metric_alarm.errors.alarm_actions), [])
}

output "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; -1 when it is unreserved."
  value       = try(aws_lambda_function.this.reserved_concurrent_executions, null)
}
