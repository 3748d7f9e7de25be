################################################################################
# Platform
################################################################################

variable "name_prefix" {
  description = "Platform name: prefixes the table, bucket, API and functions (MODEL_PLATFORM_NAME for modelctl)."
  type        = string
  default     = "mlp"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-\\d$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "s3_use_path_style" {
  description = "Path-style S3 requests: true for a local emulator (TF_VAR_s3_use_path_style=true), false on AWS."
  type        = bool
  default     = false

  validation {
    condition     = contains([true, false], var.s3_use_path_style)
    error_message = "s3_use_path_style must be true or false."
  }
}

variable "artifact_bucket_require_tls" {
  description = "Deny non-TLS requests to the artifact bucket. The local target turns it off: its emulator speaks HTTP only."
  type        = bool
  default     = true

  validation {
    condition     = contains([true, false], var.artifact_bucket_require_tls)
    error_message = "artifact_bucket_require_tls must be true or false."
  }
}

variable "artifact_lifecycle" {
  description = "Lifecycle rules of the artifact bucket: days until a replaced artifact version expires (90) and an incomplete multipart upload is aborted (7). null: none (the local platform, whose runs never last that long: the AWS provider waits about 50 s for the rules to be consistent)."
  type = object({
    noncurrent_version_expiration_days     = optional(number, 90)
    abort_incomplete_multipart_upload_days = optional(number, 7)
  })
  default = {}

  validation {
    condition     = var.artifact_lifecycle == null || try(var.artifact_lifecycle.noncurrent_version_expiration_days >= 1 && var.artifact_lifecycle.abort_incomplete_multipart_upload_days >= 1, false)
    error_message = "artifact_lifecycle days must be at least 1 (or artifact_lifecycle null: no lifecycle rules)."
  }
}

variable "deletion_protection" {
  description = "Protect the registry table and keep a non-empty artifact bucket on destroy."
  type        = bool
  default     = true

  validation {
    condition     = contains([true, false], var.deletion_protection)
    error_message = "deletion_protection must be true or false."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256])
    error_message = "tag keys must be at most 128 and values at most 256 characters."
  }
}

################################################################################
# Models
################################################################################

variable "models" {
  description = "Models to serve, by registry name: framework (selects the layer), capacity and alarm thresholds. drain = true removes the model's routes but keeps its function: the pool serves the model, and requests API Gateway still routes to the function succeed. Remove the entry on a later apply."
  type = map(object({
    framework                 = string
    memory_size               = optional(number, 1024)
    timeout                   = optional(number, 29)
    reserved_concurrency      = optional(number)
    provisioned_concurrency   = optional(number, 0)
    allow_pickle              = optional(bool, false)
    max_batch_size            = optional(number, 1000)
    alarm_errors_threshold    = optional(number, 5)
    alarm_throttles_threshold = optional(number, 1)
    alarm_p99_duration_ms     = optional(number, 1000)
    snap_start                = optional(bool, false)
    drain                     = optional(bool, false)
  }))

  validation {
    condition     = alltrue([for k, m in var.models : can(regex(local.contract.model_name_pattern, k))])
    error_message = "model names must be 1-48 lower-case letters, digits or dashes, starting and ending with a letter or digit."
  }

  validation {
    condition     = alltrue([for m in var.models : contains(local.contract.frameworks.layers, m.framework)])
    error_message = "framework must be sklearn, xgboost or onnx (models registered with --optimize)."
  }

  validation {
    # IAM role names are at most 64 characters, and each model's role is "<name_prefix>-<model>-role".
    condition     = alltrue([for k, m in var.models : length(var.name_prefix) + length(k) <= 58])
    error_message = "name_prefix and each model name together must be at most 58 characters: the model's role, <name_prefix>-<model>-role, must fit IAM's 64."
  }

  validation {
    condition     = alltrue([for m in var.models : m.memory_size >= 128 && m.memory_size <= 10240 && m.timeout >= 1 && m.timeout <= 900])
    error_message = "memory_size must be 128-10240 MB and timeout 1-900 s."
  }

  validation {
    # HTTP API integrations end after at most 30 s (a quota that cannot be raised): a function allowed to
    # run longer keeps running, and billing, after the client got its 503
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html).
    condition     = alltrue([for m in var.models : m.timeout * 1000 < var.integration_timeout_ms])
    error_message = "every model's timeout must end before the API's integration_timeout_ms (at most 30000): 29 s or less by default."
  }

  validation {
    condition     = alltrue([for m in var.models : try(m.reserved_concurrency >= 1, m.reserved_concurrency == null) && m.provisioned_concurrency >= 0])
    error_message = "reserved_concurrency must be at least 1 (or unset: unreserved), and provisioned_concurrency at least 0."
  }

  validation {
    # Provisioned concurrency counts inside reserved concurrency, and a rollout provisions the new version
    # before it releases the old one: for a moment both hold it
    # (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html).
    condition     = alltrue([for m in var.models : m.reserved_concurrency == null || try(2 * m.provisioned_concurrency <= m.reserved_concurrency, true)])
    error_message = "a model's reserved_concurrency must be at least twice its provisioned_concurrency: rollouts provision the new version before releasing the old one."
  }

  validation {
    # Lambda keeps at least 100 of the account's concurrency unreserved
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). Other functions
    # of the account reserve from the same pool: this checks the platform's own share only.
    condition     = sum(concat([0], [for m in var.models : coalesce(m.reserved_concurrency, 0) + (m.reserved_concurrency == null ? m.provisioned_concurrency * 2 : 0)])) <= var.account_concurrency_limit - 100
    error_message = "the models reserve more concurrency (reserved, plus twice the provisioned concurrency of unreserved models) than the account can give while keeping 100 unreserved: lower reserved_concurrency or raise account_concurrency_limit (a Service Quotas increase)."
  }

  validation {
    condition     = alltrue([for m in var.models : m.max_batch_size >= 1 && m.alarm_p99_duration_ms > 0 && m.alarm_errors_threshold >= 0 && m.alarm_throttles_threshold >= 0])
    error_message = "max_batch_size and alarm_p99_duration_ms must be positive, alarm thresholds not negative."
  }

  validation {
    condition     = alltrue([for m in var.models : !m.snap_start || try(local.contract.lambda_runtimes[var.lambda_runtime].snap_start, false)])
    error_message = "snap_start needs lambda_runtime python3.12 or later: Lambda offers SnapStart for Python from 3.12."
  }

  validation {
    condition     = alltrue([for m in var.models : !m.snap_start || m.provisioned_concurrency == 0])
    error_message = "a model takes snap_start or provisioned_concurrency, not both: Lambda refuses both on one version."
  }

  validation {
    # A drained model has no routes of its own: only the pool's catch-all routes can answer it.
    condition     = var.pool.enabled || alltrue([for m in var.models : !m.drain])
    error_message = "drain = true hands a model's traffic to the pooled tier: enable pool (pool.enabled = true) first, or keep the model's routes."
  }

  # HTTP API quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html):
  # routes per API, 300 by default and raisable; integrations per API, 300 and not raisable. Every model
  # takes one integration and (unless drained) length(contract routes) routes.
  validation {
    condition     = length([for m in var.models : m if !m.drain]) * length(local.contract.routes) + (var.pool.enabled ? length(local.contract.routes) + length(local.contract.pool.server_routes) : 0) <= var.api_route_quota
    error_message = "the models need more routes than the API's route quota (api_route_quota, ${length(local.contract.routes)} routes per model, ${length(local.contract.routes) + length(local.contract.pool.server_routes)} for the pool): request a Service Quotas increase of \"Routes per API\" and raise api_route_quota, or split the models over two roots."
  }

  validation {
    condition     = length(var.models) + (var.pool.enabled ? 1 : 0) <= var.api_integration_quota
    error_message = "the models need more integrations than the API's integration quota (api_integration_quota, one per model and one for the pool; AWS cannot raise it past 300): split the models over two roots."
  }
}

variable "api_route_quota" {
  description = "Routes per HTTP API in this account and region (the quota \"Routes per API\": 300 by default, raisable through Service Quotas). Plan fails when the models need more."
  type        = number
  default     = 300

  validation {
    condition     = var.api_route_quota >= 1 && floor(var.api_route_quota) == var.api_route_quota
    error_message = "api_route_quota must be a positive whole number."
  }
}

variable "api_integration_quota" {
  description = "Integrations per HTTP API (300, a quota AWS does not raise). Plan fails when the models need more."
  type        = number
  default     = 300

  validation {
    condition     = var.api_integration_quota >= 1 && var.api_integration_quota <= 300 && floor(var.api_integration_quota) == var.api_integration_quota
    error_message = "api_integration_quota must be a whole number from 1 to 300 (the HTTP API quota, not adjustable)."
  }
}

variable "account_concurrency_limit" {
  description = "The account's Lambda concurrency quota in this region (1000 by default; new accounts may have less). The models' reserved concurrency must leave 100 of it unreserved."
  type        = number
  default     = 1000

  validation {
    condition     = var.account_concurrency_limit >= 10
    error_message = "account_concurrency_limit must be at least 10."
  }
}

variable "integration_timeout_ms" {
  description = "How long the API waits for a function, in ms (HTTP APIs allow at most 30000); every model's timeout must be shorter."
  type        = number
  default     = 30000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 30000
    error_message = "integration_timeout_ms must be between 50 and 30000 (the HTTP API quota)."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic the models' alarms notify; null (the default): the platform creates <name_prefix>-alarms, encrypted with the platform key."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:[a-z-]+:sns:", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN, or null."
  }
}

variable "alarm_email_addresses" {
  description = "Email addresses subscribed to the platform's alarm topic (each confirms by email)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_email_addresses : can(regex("^[^@ ]+@[^@ ]+$", a))])
    error_message = "alarm_email_addresses must be email addresses."
  }
}

variable "lambda_runtime" {
  description = "Python runtime of every model function (model_registry/core/contract.json lists them with the OS each runs on); the layers in build_dir must be built for it (make build LAMBDA_RUNTIME=...). SnapStart needs python3.12 or later."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(keys(local.contract.lambda_runtimes), var.lambda_runtime)
    error_message = "lambda_runtime must be one of ${join(", ", keys(local.contract.lambda_runtimes))}."
  }
}

variable "build_dir" {
  description = "Folder holding function.zip and layer-<framework>.zip from scripts/build_lambda.py (default: ../build/lambda)."
  type        = string
  default     = ""

  validation {
    condition     = !endswith(var.build_dir, "/") || var.build_dir == "/"
    error_message = "build_dir must not end with a slash."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

################################################################################
# API
################################################################################

variable "authorization_type" {
  description = "Authorization on every route: AWS_IAM (default), JWT, or NONE."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT", "NONE"], var.authorization_type)
    error_message = "authorization_type must be AWS_IAM, JWT or NONE."
  }
}

variable "jwt_issuer" {
  description = "JWT issuer URL when authorization_type is JWT."
  type        = string
  default     = ""

  validation {
    condition     = var.jwt_issuer == "" || can(regex("^https://", var.jwt_issuer))
    error_message = "jwt_issuer must be an https URL."
  }

  validation {
    # A JWT authorizer needs an issuer ("Required for the JWT authorizer type", JWTConfiguration).
    condition     = var.authorization_type != "JWT" || var.jwt_issuer != ""
    error_message = "authorization_type JWT needs jwt_issuer."
  }
}

variable "jwt_audience" {
  description = "Accepted JWT audiences when authorization_type is JWT."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.jwt_audience : length(a) > 0])
    error_message = "jwt_audience entries must not be empty."
  }

  validation {
    # "A valid JWT must provide an aud that matches at least one entry in this list": with none, every
    # request would be refused (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-jwt.html).
    condition     = var.authorization_type != "JWT" || length(var.jwt_audience) > 0
    error_message = "authorization_type JWT needs at least one jwt_audience."
  }
}

variable "throttling_burst_limit" {
  description = "Burst limit of the API's $default stage."
  type        = number
  default     = 500

  validation {
    condition     = var.throttling_burst_limit >= 1
    error_message = "throttling_burst_limit must be at least 1."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second of the API's $default stage."
  type        = number
  default     = 1000

  validation {
    condition     = var.throttling_rate_limit >= 1
    error_message = "throttling_rate_limit must be at least 1."
  }
}

################################################################################
# The pooled tier
################################################################################

variable "pool" {
  description = "The pooled tier: one function (the onnx layer) behind catch-all routes that serves every registered model with an ONNX form (register --optimize) and no entry in models, with no apply per model. cache_fraction of its memory holds loaded models (LRU by artifact bytes); policy_cache_s is how stale a traffic policy may be."
  type = object({
    enabled                   = optional(bool, true)
    memory_size               = optional(number, 2048)
    timeout                   = optional(number, 29)
    reserved_concurrency      = optional(number)
    max_batch_size            = optional(number, 1000)
    cache_fraction            = optional(number, 0.5)
    policy_cache_s            = optional(number, 5)
    alarm_errors_threshold    = optional(number, 5)
    alarm_throttles_threshold = optional(number, 1)
    alarm_p99_duration_ms     = optional(number, 1000)
  })
  default = {}

  validation {
    condition     = var.pool.memory_size >= 128 && var.pool.memory_size <= 10240 && var.pool.timeout >= 1 && var.pool.timeout <= 900
    error_message = "pool.memory_size must be 128-10240 MB and pool.timeout 1-900 s."
  }

  validation {
    condition     = var.pool.cache_fraction > 0 && var.pool.cache_fraction < 1 && var.pool.policy_cache_s >= 0 && var.pool.policy_cache_s <= 300
    error_message = "pool.cache_fraction must be between 0 and 1 (the rest of the memory runs the function), pool.policy_cache_s 0-300."
  }

  validation {
    condition     = var.pool.reserved_concurrency == null || try(var.pool.reserved_concurrency >= 1, false)
    error_message = "pool.reserved_concurrency must be at least 1, or unset (unreserved)."
  }

  validation {
    condition     = var.pool.timeout * 1000 < var.integration_timeout_ms
    error_message = "the pool's timeout must end before the API's integration_timeout_ms."
  }
}
