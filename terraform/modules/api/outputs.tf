output "api_id" {
  description = "ID of the HTTP API."
  value       = try(aws_apigatewayv2_api.this.id, "")
}

output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = try(aws_apigatewayv2_api.this.api_endpoint, "")
}

output "execution_arn" {
  description = "Execution ARN of the HTTP API (for IAM policies of callers)."
  value       = try(aws_apigatewayv2_api.this.execution_arn, "")
}

output "route_keys" {
  description = "Route keys per model (and under \"--pool\", the pool's)."
  value       = { for target, _ in local.targets : target => [for k, r in local.routes : r.route_key if r.target == target] }
}

output "integration_ids" {
  description = "Integration ID per model (and under \"--pool\", the pool's); a drained model keeps its integration."
  value       = { for target, integration in aws_apigatewayv2_integration.this : target => integration.id }
}
