################################################################################
# Names
################################################################################

variable "name_prefix" {
  description = "Prefix of every resource name (lower-case letters, digits, dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "table_keys" {
  description = "Partition and sort key names of the registry table, and the catalog index listing the models (from model_registry/core/contract.json)."
  type = object({
    partition_key = string
    sort_key      = string
    catalog_index = string
    catalog_key   = string
  })

  validation {
    condition     = var.table_keys.partition_key != var.table_keys.sort_key
    error_message = "partition and sort keys must differ."
  }
}

################################################################################
# Protection
################################################################################

variable "deletion_protection" {
  description = "Protect the registry table from deletion and keep the bucket when it still holds artifacts."
  type        = bool
  default     = true

  validation {
    condition     = contains([true, false], var.deletion_protection)
    error_message = "deletion_protection must be true or false."
  }
}

variable "require_tls" {
  description = "Deny non-TLS requests to the artifact bucket. Only an HTTP-only emulator needs this off."
  type        = bool
  default     = true

  validation {
    condition     = contains([true, false], var.require_tls)
    error_message = "require_tls must be true or false."
  }
}

variable "artifact_lifecycle" {
  description = "Lifecycle rules of the artifact bucket: days until a replaced (noncurrent) artifact version expires, and until an incomplete multipart upload is aborted. null: no lifecycle configuration."
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

variable "kms_deletion_window_days" {
  description = "Waiting period before the platform KMS key is deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
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
