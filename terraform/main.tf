provider "aws" {
  region            = var.region
  s3_use_path_style = var.s3_use_path_style

  default_tags {
    tags = merge({ platform = var.name_prefix, managed-by = "terraform" }, var.tags)
  }
}

locals {
  # The facts shared with the handler and modelctl (environment names, keys, routes).
  contract   = jsondecode(file("${path.module}/../model_registry/core/contract.json"))
  env        = local.contract.env
  build_dir  = var.build_dir != "" ? var.build_dir : "${path.module}/../build/lambda"
  frameworks = toset(concat([for m in var.models : m.framework], var.pool.enabled ? [local.contract.pool.framework] : []))
}

module "registry" {
  source = "./modules/registry"

  name_prefix         = var.name_prefix
  table_keys          = { partition_key = local.contract.table.partition_key, sort_key = local.contract.table.sort_key, catalog_index = local.contract.table.catalog_index, catalog_key = local.contract.table.catalog_key }
  deletion_protection = var.deletion_protection
  require_tls         = var.artifact_bucket_require_tls
  artifact_lifecycle  = var.artifact_lifecycle
}

################################################################################
# Deployment packages, stored in the artifact bucket by content hash: the local
# data plane finds the code of any function version by the CodeSha256 Lambda reports.
################################################################################

locals {
  # scripts/build_lambda.py records the runtime the layers were built for and the newest glibc each
  # layer's shared objects need; the runtime's OS must provide it (contract.json lambda_runtimes).
  build_manifest = "${local.build_dir}/build.json"
  build          = jsondecode(fileexists(local.build_manifest) ? file(local.build_manifest) : "{\"runtime\": \"none (run make build)\"}")
  build_layers   = try(local.build.layers, {})
  # glibc x.y as x * 1000 + y; a layer with no glibc symbol needs counts as 0.
  runtime_glibc = try(tonumber(split(".", local.contract.lambda_runtimes[var.lambda_runtime].glibc)[0]) * 1000 + tonumber(split(".", local.contract.lambda_runtimes[var.lambda_runtime].glibc)[1]), 0)
  layer_glibc   = { for f, layer in local.build_layers : f => try(tonumber(split(".", layer.highest_glibc)[0]) * 1000 + tonumber(split(".", layer.highest_glibc)[1]), 0) }
  # Layers in use that the build did not scan, or that need a newer glibc than the runtime's OS has.
  layers_beyond_glibc = [for f in local.frameworks : f if lookup(local.layer_glibc, f, 999999) > local.runtime_glibc]
  packages = merge(
    { function = "${local.build_dir}/function.zip" },
    { for f in local.frameworks : "layer-${f}" => "${local.build_dir}/layer-${f}.zip" },
  )
}

resource "aws_s3_object" "package" {
  for_each = local.packages

  bucket      = module.registry.bucket_name
  key         = "${local.contract.deployment_prefix}/${filesha256(each.value)}.zip"
  source      = each.value
  source_hash = filemd5(each.value)
  kms_key_id  = module.registry.kms_key_arn
}

resource "aws_lambda_layer_version" "framework" {
  for_each = local.frameworks

  layer_name          = "${var.name_prefix}-${each.key}"
  description         = "Dependencies of ${each.key} model functions"
  s3_bucket           = aws_s3_object.package["layer-${each.key}"].bucket
  s3_key              = aws_s3_object.package["layer-${each.key}"].key
  source_code_hash    = filebase64sha256(local.packages["layer-${each.key}"])
  compatible_runtimes = [var.lambda_runtime]

  lifecycle {
    precondition {
      condition     = local.build.runtime == var.lambda_runtime
      error_message = "the layers in build_dir were built for ${local.build.runtime}, not lambda_runtime ${var.lambda_runtime}: run make build LAMBDA_RUNTIME=${var.lambda_runtime}."
    }
    precondition {
      condition     = length(local.layers_beyond_glibc) == 0
      error_message = "layers ${join(", ", local.layers_beyond_glibc)} need a newer glibc than ${var.lambda_runtime}'s OS provides (or their build recorded none): Lambda could not import them. Rebuild with make build LAMBDA_RUNTIME=${var.lambda_runtime}."
    }
  }
}

module "model_endpoint" {
  source   = "./modules/model_endpoint"
  for_each = var.models

  model_name      = each.key
  function_name   = replace(replace(local.contract.function_name_template, "{platform}", var.name_prefix), "{model}", each.key)
  alias_name      = local.contract.alias_name
  table_arn       = module.registry.table_arn
  bucket_arn      = module.registry.bucket_arn
  artifact_prefix = local.contract.artifact_prefix
  kms_key_arn     = module.registry.kms_key_arn
  # One policy document per actor, in iam/: this one for the model functions.
  role_policy_template = file("${path.module}/../iam/function.json")
  package = {
    s3_bucket = aws_s3_object.package["function"].bucket
    s3_key    = aws_s3_object.package["function"].key
    sha256    = filebase64sha256(local.packages.function)
  }
  layer_arns                  = [aws_lambda_layer_version.framework[each.value.framework].arn]
  runtime                     = var.lambda_runtime
  snap_start                  = each.value.snap_start
  memory_size                 = each.value.memory_size
  timeout                     = each.value.timeout
  reserved_concurrency        = each.value.reserved_concurrency
  provisioned_concurrency     = each.value.provisioned_concurrency
  provisioned_concurrency_tag = local.contract.tags.provisioned_concurrency
  log_retention_days          = var.log_retention_days
  alarm_errors_threshold      = each.value.alarm_errors_threshold
  alarm_throttles_threshold   = each.value.alarm_throttles_threshold
  alarm_p99_duration_ms       = each.value.alarm_p99_duration_ms
  alarm_actions               = [local.alarm_topic_arn]

  environment = {
    (local.env.platform_name)    = var.name_prefix
    (local.env.table)            = module.registry.table_name
    (local.env.bucket)           = module.registry.bucket_name
    (local.env.model_name)       = each.key
    (local.env.model_version)    = "latest" # replaced by the first rollout
    (local.env.allow_pickle)     = tostring(each.value.allow_pickle)
    (local.env.max_batch_size)   = tostring(each.value.max_batch_size)
    POWERTOOLS_SERVICE_NAME      = local.contract.metrics.service
    POWERTOOLS_METRICS_NAMESPACE = local.contract.metrics.namespace
  }

  tags = { model = each.key }
}

################################################################################
# The pooled tier: any registered model with an ONNX form and no dedicated function
################################################################################

module "pool" {
  source = "./modules/model_endpoint"
  count  = var.pool.enabled ? 1 : 0

  model_name      = "pool"
  function_name   = replace(local.contract.pool.function_name_template, "{platform}", var.name_prefix)
  alias_name      = local.contract.alias_name
  table_arn       = module.registry.table_arn
  bucket_arn      = module.registry.bucket_arn
  artifact_prefix = local.contract.artifact_prefix
  kms_key_arn     = module.registry.kms_key_arn
  # Every model's registry items and artifacts, read only: iam/pool-function.json.
  role_policy_template = file("${path.module}/../iam/pool-function.json")
  package = {
    s3_bucket = aws_s3_object.package["function"].bucket
    s3_key    = aws_s3_object.package["function"].key
    sha256    = filebase64sha256(local.packages.function)
  }
  layer_arns                  = [aws_lambda_layer_version.framework[local.contract.pool.framework].arn]
  runtime                     = var.lambda_runtime
  memory_size                 = var.pool.memory_size
  timeout                     = var.pool.timeout
  reserved_concurrency        = var.pool.reserved_concurrency
  provisioned_concurrency_tag = local.contract.tags.provisioned_concurrency
  log_retention_days          = var.log_retention_days
  alarm_errors_threshold      = var.pool.alarm_errors_threshold
  alarm_throttles_threshold   = var.pool.alarm_throttles_threshold
  alarm_p99_duration_ms       = var.pool.alarm_p99_duration_ms
  alarm_actions               = [local.alarm_topic_arn]

  environment = {
    (local.env.platform_name)       = var.name_prefix
    (local.env.table)               = module.registry.table_name
    (local.env.bucket)              = module.registry.bucket_name
    (local.env.model_name)          = ""
    (local.env.pool)                = "true"
    (local.env.pool_cache_fraction) = tostring(var.pool.cache_fraction)
    (local.env.pool_policy_ttl)     = tostring(var.pool.policy_cache_s)
    (local.env.max_batch_size)      = tostring(var.pool.max_batch_size)
    POWERTOOLS_SERVICE_NAME         = local.contract.metrics.service
    POWERTOOLS_METRICS_NAMESPACE    = local.contract.metrics.namespace
  }

  tags = { tier = "pool" }
}

################################################################################
# Alarm notifications: the models' alarms notify this topic (or the one given)
################################################################################

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = module.registry.kms_key_arn
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_sns_topic_policy" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  arn = aws_sns_topic.alarms[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarmsPublish"
      Effect    = "Allow"
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms[0].arn
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Condition = {
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:cloudwatch:${var.region}:${data.aws_caller_identity.current.account_id}:alarm:${var.name_prefix}-*" }
      }
    }]
  })
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = var.alarm_topic_arn == null ? toset(var.alarm_email_addresses) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_topic_arn = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
}

module "api" {
  source = "./modules/api"

  name                   = "${var.name_prefix}-api"
  route_templates        = local.contract.routes
  authorization_type     = var.authorization_type
  jwt_issuer             = var.jwt_issuer
  jwt_audience           = var.jwt_audience
  throttling_burst_limit = var.throttling_burst_limit
  throttling_rate_limit  = var.throttling_rate_limit
  integration_timeout_ms = var.integration_timeout_ms
  log_retention_days     = var.log_retention_days
  kms_key_arn            = module.registry.kms_key_arn

  models = {
    for name, endpoint in module.model_endpoint : name => {
      function_name = endpoint.function_name
      alias_name    = endpoint.alias_name
      alias_arn     = endpoint.alias_arn
      routed        = !var.models[name].drain
    }
  }
  # The pool's routes: the model routes with {name} a path parameter (less specific than every model's
  # literal routes, so dedicated models keep theirs), and the server-wide routes.
  pool = var.pool.enabled ? {
    function_name = module.pool[0].function_name
    alias_name    = module.pool[0].alias_name
    alias_arn     = module.pool[0].alias_arn
    route_keys    = concat(local.contract.routes, local.contract.pool.server_routes)
  } : null
}
