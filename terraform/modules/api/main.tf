locals {
  # Every function the API integrates with: the models', and the pool under a key no model can have.
  pool_key = "--pool"
  targets = merge(
    { for model, target in var.models : model => { function_name = target.function_name, alias_name = target.alias_name, alias_arn = target.alias_arn } },
    var.pool == null ? {} : { (local.pool_key) = { function_name = var.pool.function_name, alias_name = var.pool.alias_name, alias_arn = var.pool.alias_arn } },
  )
  # One route per (model, template): the greedy {proxy+} routes are resolved inside the function. The
  # pool's route keys are given whole; API Gateway picks the most specific route for each request
  # (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html), so a
  # model's literal routes win over the pool's {name} ones.
  # A model leaving the dedicated tier loses its routes first (routed = false) and its function, integration
  # and permission on a later apply: a deployment is a snapshot of the API that takes effect after the
  # change (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-stages.html), so requests
  # may still reach the old target for a while, and must find it there.
  model_routes = merge([
    for model, target in var.models : {
      for template in var.route_templates :
      "${model} ${template}" => { target = model, route_key = replace(template, "{name}", model) }
    } if target.routed
  ]...)
  pool_routes = var.pool == null ? {} : {
    for key in var.pool.route_keys : "${local.pool_key} ${key}" => { target = local.pool_key, route_key = key }
  }
  routes = merge(local.model_routes, local.pool_routes)
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "Model serving API: /models/{name}/... and Open Inference Protocol /v2/models/{name}/..."
  tags          = var.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = var.authorization_type == "JWT" ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      sourceIp           = "$context.identity.sourceIp"
    })
  }

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = local.targets

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = each.value.alias_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_ms
  description            = "${each.key}: the live alias"
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value.route_key
  target             = "integrations/${aws_apigatewayv2_integration.this[each.value.target].id}"
  authorization_type = var.authorization_type
  authorizer_id      = var.authorization_type == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null

  # A route that exists before API Gateway may invoke its function answers 500 (invalid permissions):
  # routes are created after the permissions, and destroyed before them. A model moving into the
  # dedicated tier is answered by the pool until its own route can reach its function. (API Gateway invokes a
  # Lambda integration only with the function's resource-based permission:
  # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html;
  # the local data plane enforces it, tests/e2e/test_lambda_limits.py.)
  depends_on = [aws_lambda_permission.this]
}

resource "aws_lambda_permission" "this" {
  for_each = local.targets

  statement_id  = "AllowInvokeFrom-${var.name}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  qualifier     = each.value.alias_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}
