data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  log_group_name = "/aws/lambda/${var.function_name}"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}"
}

################################################################################
# IAM: this model's registry items and artifacts, nothing else
################################################################################

locals {
  # jsonencode rather than aws_iam_policy_document: the policy is plain data, visible in plans and tests.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })

  # The root passes iam/function.json, kept beside the operator's and the deployer's documents: the e2e
  # suite checks every AWS call the handler makes against the same file.
  role_policy = jsonencode(jsondecode(templatestring(var.role_policy_template, {
    table_arn       = var.table_arn
    model_name      = var.model_name
    bucket_arn      = var.bucket_arn
    artifact_prefix = var.artifact_prefix
    kms_key_arn     = var.kms_key_arn
    region          = data.aws_region.current.name
    dns_suffix      = data.aws_partition.current.dns_suffix
    log_group_arn   = local.log_group_arn
  })))
}

resource "aws_iam_role" "this" {
  name                 = "${var.function_name}-role"
  assume_role_policy   = local.assume_role_policy
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = local.role_policy
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

################################################################################
# Function, versions and the live alias
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway; a dead-letter queue only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Reads only DynamoDB, S3 and KMS through public endpoints; no VPC resources to reach.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile; artifacts are integrity-checked by sha256 instead.
  function_name                  = var.function_name
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  s3_bucket                      = var.package.s3_bucket
  s3_key                         = var.package.s3_key
  source_code_hash               = var.package.sha256
  layers                         = var.layer_arns
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency
  publish                        = true
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  # SnapStart: each published version is initialised once (the model loaded, the handler's
  # before-snapshot hook checking it) and cold starts restore that snapshot.
  dynamic "snap_start" {
    for_each = var.snap_start ? [1] : []
    content {
      apply_on = "PublishedVersions"
    }
  }

  tags = merge(var.tags, { (var.provisioned_concurrency_tag) = tostring(var.provisioned_concurrency) })

  # Rollouts own the pinned model version: apply must not undo one.
  lifecycle {
    ignore_changes = [environment[0].variables["MODEL_VERSION"]]

    precondition {
      condition     = !var.snap_start || tonumber(split(".", var.runtime)[1]) >= 12
      error_message = "SnapStart for Python needs the python3.12 runtime or later (lambda_runtime)."
    }
    precondition {
      condition     = !var.snap_start || var.provisioned_concurrency == 0
      error_message = "Lambda refuses SnapStart and provisioned concurrency on the same version: choose one."
    }
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_alias" "this" {
  name             = var.alias_name
  description      = "Traffic for ${var.model_name}; versions and weights are managed by modelctl rollouts."
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version

  # Rollouts own the alias version and its weights.
  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

# Provisioned concurrency is not configured here: Lambda refuses it on an alias with routing weights,
# so it goes on the versions the alias points at, and those belong to rollouts (modelctl), which read
# the wanted count from this function's tag and move it with the traffic.

################################################################################
# Alarms on the alias
################################################################################

locals {
  alias_dimensions = {
    FunctionName = aws_lambda_function.this.function_name
    Resource     = "${aws_lambda_function.this.function_name}:${var.alias_name}"
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.function_name}-errors"
  alarm_description   = "Errors on ${var.model_name}'s live alias"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = local.alias_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.alarm_errors_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${var.function_name}-throttles"
  alarm_description   = "Throttles on ${var.model_name}'s live alias"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = local.alias_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.alarm_throttles_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "p99_duration" {
  alarm_name          = "${var.function_name}-p99-duration"
  alarm_description   = "p99 duration on ${var.model_name}'s live alias"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = local.alias_dimensions
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.alarm_p99_duration_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
