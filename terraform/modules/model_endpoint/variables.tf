################################################################################
# The model and where its registry lives
################################################################################

variable "model_name" {
  description = "Registered model name served by this endpoint."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$", var.model_name))
    error_message = "model_name must be 1-48 lower-case letters, digits or dashes, starting and ending with a letter or digit."
  }
}

variable "function_name" {
  description = "Name of the Lambda function; its role is named <function_name>-role."
  type        = string

  validation {
    # Lambda function names and IAM role names are both at most 64 characters; the role adds "-role".
    condition     = can(regex("^[A-Za-z0-9_-]{1,59}$", var.function_name))
    error_message = "function_name must be 1-59 letters, digits, dashes or underscores (its role, <name>-role, must fit IAM's 64)."
  }
}

variable "alias_name" {
  description = "Alias that carries traffic (and canary weights)."
  type        = string
  default     = "live"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,127}$", var.alias_name))
    error_message = "alias_name must start with a letter and be at most 128 characters."
  }
}

variable "table_arn" {
  description = "ARN of the registry table."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:dynamodb:", var.table_arn))
    error_message = "table_arn must be a DynamoDB table ARN."
  }
}

variable "bucket_arn" {
  description = "ARN of the artifact bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:s3:::", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN."
  }
}

variable "artifact_prefix" {
  description = "Key prefix under which the model's artifacts live (the model name is appended)."
  type        = string
  default     = "models"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.artifact_prefix))
    error_message = "artifact_prefix must be lower-case letters, digits or dashes."
  }
}

variable "kms_key_arn" {
  description = "Platform KMS key: decrypts table and artifacts, encrypts logs and environment."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "role_policy_template" {
  description = "The execution role's policy document with $${...} placeholders (the root passes iam/function.json): table_arn, model_name, bucket_arn, artifact_prefix, kms_key_arn, region, dns_suffix, log_group_arn."
  type        = string

  validation {
    condition     = can(jsondecode(var.role_policy_template).Statement)
    error_message = "role_policy_template must be a JSON policy document."
  }
}

variable "environment" {
  description = "Environment variables of the function (table, bucket, model name, pinned version, limits)."
  type        = map(string)

  validation {
    condition     = alltrue([for k, v in var.environment : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "environment variable names must be valid identifiers."
  }
}

################################################################################
# Code
################################################################################

variable "package" {
  description = "The function zip in S3 (built by scripts/build_lambda.py) and its base64 sha256."
  type = object({
    s3_bucket = string
    s3_key    = string
    sha256    = string
  })

  validation {
    condition     = endswith(var.package.s3_key, ".zip") && length(var.package.sha256) == 44
    error_message = "package.s3_key must name a .zip and package.sha256 be a base64 sha256."
  }
}

variable "layer_arns" {
  description = "Dependency layers of the function (its framework family)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.layer_arns) <= 5
    error_message = "Lambda allows at most 5 layers."
  }
}

variable "handler" {
  description = "Handler entry point."
  type        = string
  default     = "functions.handler.lambda_handler"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.]+$", var.handler))
    error_message = "handler must be a dotted Python path."
  }
}

variable "runtime" {
  description = "Lambda Python runtime (python3.12 and later run on Amazon Linux 2023, python3.11 on Amazon Linux 2)."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.1[1-9]$", var.runtime))
    error_message = "runtime must be a Lambda Python runtime from python3.11 on."
  }
}

################################################################################
# Capacity
################################################################################

variable "memory_size" {
  description = "Memory in MB (also sets the CPU share)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (the function's concurrency limit), or null for none: the function then shares the account's unreserved concurrency."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 1, false)
    error_message = "reserved_concurrency must be at least 1, or null."
  }
}

variable "provisioned_concurrency_tag" {
  description = "Function tag that carries provisioned_concurrency to the rollout tooling."
  type        = string
  default     = "mlp:provisioned-concurrency"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@ -]{1,128}$", var.provisioned_concurrency_tag)) && !startswith(var.provisioned_concurrency_tag, "aws:")
    error_message = "provisioned_concurrency_tag must be a valid Lambda tag key (not aws:)."
  }
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency of the stable version (a canary gets its share, at least 1); applied by rollouts to the live versions, since Lambda refuses it on a weighted alias. 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.provisioned_concurrency >= 0
    error_message = "provisioned_concurrency must not be negative."
  }

  validation {
    # It counts inside reserved concurrency, and a rollout puts it on the new version before it takes it
    # off the old one (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html).
    condition     = var.reserved_concurrency == null || try(2 * var.provisioned_concurrency <= var.reserved_concurrency, true)
    error_message = "reserved_concurrency must hold twice provisioned_concurrency: a rollout provisions the new version before it releases the old one."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

################################################################################
# Alarms
################################################################################

variable "alarm_errors_threshold" {
  description = "Errors on the alias per minute that raise the alarm."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_errors_threshold >= 0
    error_message = "alarm_errors_threshold must not be negative."
  }
}

variable "alarm_throttles_threshold" {
  description = "Throttles on the alias per minute that raise the alarm."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_throttles_threshold >= 0
    error_message = "alarm_throttles_threshold must not be negative."
  }
}

variable "alarm_p99_duration_ms" {
  description = "p99 duration on the alias (ms) that raises the alarm."
  type        = number
  default     = 1000

  validation {
    condition     = var.alarm_p99_duration_ms > 0
    error_message = "alarm_p99_duration_ms must be positive."
  }
}

variable "alarm_actions" {
  description = "ARNs the alarms notify on ALARM and OK (an SNS topic)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:[a-z-]+:", arn))])
    error_message = "alarm_actions must be ARNs."
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

variable "snap_start" {
  description = "Turn on SnapStart for published versions (python3.12 or later; not with provisioned concurrency)."
  type        = bool
  default     = false
  nullable    = false
}
