################################################################################
# API
################################################################################

variable "name" {
  description = "Name of the HTTP API."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.name))
    error_message = "name must be 1-128 letters, digits, dashes or underscores."
  }
}

variable "models" {
  description = "Per model: the live alias ARN and function name its routes integrate with; routed = false keeps the integration and the invoke permission but no route (a model moving to the pool: requests already routed to the function still succeed)."
  type = map(object({
    function_name = string
    alias_name    = string
    alias_arn     = string
    routed        = optional(bool, true)
  }))

  validation {
    condition     = alltrue([for k, m in var.models : can(regex("^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$", k))])
    error_message = "model names must be 1-48 lower-case letters, digits or dashes."
  }
}

variable "route_templates" {
  description = "Route keys per model, with {name} standing for the model name (from model_registry/core/contract.json)."
  type        = list(string)

  validation {
    condition     = length(var.route_templates) >= 1 && alltrue([for r in var.route_templates : can(regex("^(ANY|GET|POST) /", r))])
    error_message = "route_templates must be route keys like \"ANY /models/{name}/{proxy+}\"."
  }
}

################################################################################
# Authorization
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
  description = "JWT issuer URL (with authorization_type = JWT)."
  type        = string
  default     = ""

  validation {
    condition     = var.jwt_issuer == "" || can(regex("^https://", var.jwt_issuer))
    error_message = "jwt_issuer must be an https URL."
  }
}

variable "jwt_audience" {
  description = "Accepted JWT audiences (with authorization_type = JWT)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.jwt_audience : length(a) > 0])
    error_message = "jwt_audience entries must not be empty."
  }
}

################################################################################
# Stage
################################################################################

variable "throttling_burst_limit" {
  description = "Burst limit of the $default stage."
  type        = number
  default     = 500

  validation {
    condition     = var.throttling_burst_limit >= 1
    error_message = "throttling_burst_limit must be at least 1."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second of the $default stage."
  type        = number
  default     = 1000

  validation {
    condition     = var.throttling_rate_limit >= 1
    error_message = "throttling_rate_limit must be at least 1."
  }
}

variable "integration_timeout_ms" {
  description = "Integration timeout in milliseconds (HTTP APIs allow at most 30000)."
  type        = number
  default     = 30000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 30000
    error_message = "integration_timeout_ms must be between 50 and 30000."
  }
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the access log group."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
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

variable "pool" {
  description = "The pooled function, when there is one: its live alias and its route keys, added as they are."
  type = object({
    function_name = string
    alias_name    = string
    alias_arn     = string
    route_keys    = list(string)
  })
  default = null
}
