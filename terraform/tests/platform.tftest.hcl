# Plan-and-apply against a mocked aws provider: no AWS, no emulator.
# Run by tests/terraform/test_terraform.py with -var build_dir=<folder with placeholder zips>.

mock_provider "aws" {
  source = "./tests"
}

variables {
  models = {
    iris          = { framework = "sklearn" }
    breast-cancer = { framework = "xgboost", memory_size = 2048, reserved_concurrency = 3 }
  }
}

run "one_endpoint_per_model" {
  command = apply

  assert {
    condition     = toset(keys(module.model_endpoint)) == toset(["iris", "breast-cancer"])
    error_message = "expected one model endpoint per entry of the models map"
  }

  assert {
    condition     = module.model_endpoint["iris"].function_name == "mlp-iris" && module.model_endpoint["breast-cancer"].function_name == "mlp-breast-cancer"
    error_message = "function names must follow contract.json's function_name_template"
  }

  assert {
    condition     = alltrue([for m in module.model_endpoint : m.alias_name == "live"])
    error_message = "every model needs the live alias"
  }

  assert {
    condition     = alltrue([for name, m in module.model_endpoint : m.log_group_name == "/aws/lambda/mlp-${name}"])
    error_message = "every function needs its own log group"
  }

  assert {
    condition     = alltrue([for m in module.model_endpoint : length(m.alarm_names) == 3])
    error_message = "every alias needs errors, throttles and p99 alarms"
  }

  assert {
    condition     = toset(keys(aws_lambda_layer_version.framework)) == toset(["sklearn", "xgboost", "onnx"])
    error_message = "one layer per framework in use: the models' and the pool's (onnx)"
  }
}

run "the_pool_serves_every_other_model_behind_catch_all_routes" {
  command = apply

  assert {
    condition     = module.pool[0].function_name == "mlp--pool" && output.pool_function.function_name == "mlp--pool"
    error_message = "the pool's function name must follow contract.json's pool.function_name_template"
  }

  assert {
    condition     = toset(module.api.route_keys["--pool"]) == toset(["ANY /models/{name}/{proxy+}", "ANY /models/{name}", "ANY /v2/models/{name}/{proxy+}", "ANY /v2/models/{name}", "GET /models", "GET /v2", "GET /v2/health/live", "GET /v2/health/ready", "POST /v2/repository/index"])
    error_message = "the pool takes the model routes with {name} a parameter, and the server-wide routes"
  }

  assert {
    condition     = length(jsondecode(module.pool[0].role_policy_json).Statement[0].Resource) == 2 && !can(jsondecode(module.pool[0].role_policy_json).Statement[0].Condition)
    error_message = "the pool reads every model's registry items and the catalog index"
  }
}

run "without_the_pool_no_catch_all_route_exists" {
  command = apply

  variables {
    pool = { enabled = false }
  }

  assert {
    condition     = length(module.pool) == 0 && !contains(keys(module.api.route_keys), "--pool") && output.pool_function == null
    error_message = "pool.enabled = false must leave no pool function and no catch-all route"
  }

  assert {
    condition     = toset(keys(aws_lambda_layer_version.framework)) == toset(["sklearn", "xgboost"])
    error_message = "without the pool, only the models' layers"
  }
}

run "routes_per_model" {
  command = apply

  assert {
    condition     = length(module.api.route_keys["iris"]) == 4 && length(module.api.route_keys["breast-cancer"]) == 4
    error_message = "each model gets the four contract routes"
  }

  assert {
    condition     = contains(module.api.route_keys["iris"], "ANY /models/iris/{proxy+}") && contains(module.api.route_keys["iris"], "ANY /v2/models/iris")
    error_message = "routes must be the contract templates with the model name"
  }
}

run "role_policy_is_scoped_to_the_model" {
  command = apply

  assert {
    condition     = jsondecode(module.model_endpoint["iris"].role_policy_json).Statement[0].Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == ["iris"]
    error_message = "the registry statement must be limited to the model's partition"
  }

  assert {
    condition     = jsondecode(module.model_endpoint["iris"].role_policy_json).Statement[1].Resource == "arn:aws:s3:::mlp-artifacts-123456789012/models/iris/*"
    error_message = "the artifact statement must be limited to the model's prefix"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(module.model_endpoint["breast-cancer"].role_policy_json).Statement :
      s.Resource != "*" || s.Sid == "WriteTraces"
    ])
    error_message = "only X-Ray (which has no resource-level permissions) may use Resource *"
  }
}

run "bad_model_names_fail_at_plan" {
  command = plan

  variables {
    models = { "../x" = { framework = "sklearn" } }
  }

  expect_failures = [var.models]
}

run "unknown_framework_fails_at_plan" {
  command = plan

  variables {
    models = { iris = { framework = "pytorch" } }
  }

  expect_failures = [var.models]
}

run "snap_start_on_published_versions" {
  command = apply

  variables {
    models = {
      iris          = { framework = "sklearn", snap_start = true }
      breast-cancer = { framework = "xgboost", provisioned_concurrency = 1 }
    }
  }

  assert {
    condition     = module.model_endpoint["iris"].snap_start_apply_on == "PublishedVersions"
    error_message = "snap_start = true must turn SnapStart on for published versions"
  }

  assert {
    condition     = module.model_endpoint["breast-cancer"].snap_start_apply_on == null
    error_message = "SnapStart stays off unless asked for"
  }

  assert {
    condition     = alltrue([for m in module.model_endpoint : m.runtime == "python3.12"]) && alltrue([for l in aws_lambda_layer_version.framework : l.compatible_runtimes == toset(["python3.12"])])
    error_message = "functions and layers must use lambda_runtime"
  }
}

run "snap_start_on_python311_fails_at_plan" {
  command = plan

  variables {
    lambda_runtime = "python3.11"
    build_dir      = "${var.build_dir}/py311"
    models         = { iris = { framework = "sklearn", snap_start = true } }
  }

  expect_failures = [var.models]
}

run "snap_start_with_provisioned_concurrency_fails_at_plan" {
  command = plan

  variables {
    models = { iris = { framework = "sklearn", snap_start = true, provisioned_concurrency = 1 } }
  }

  expect_failures = [var.models]
}

run "layers_built_for_another_runtime_fail_at_plan" {
  command = plan

  variables {
    lambda_runtime = "python3.11"
  }

  expect_failures = [aws_lambda_layer_version.framework]
}

run "unknown_runtime_fails_at_plan" {
  command = plan

  variables {
    lambda_runtime = "python3.10"
  }

  expect_failures = [var.lambda_runtime]
}

# Amazon Linux 2023 (python3.12) has glibc 2.34: a layer needing 2.35 would fail to import on Lambda.
run "layers_needing_a_newer_glibc_than_the_runtime_os_fail_at_plan" {
  command = plan

  variables {
    build_dir = "${var.build_dir}/glibc-too-new"
  }

  expect_failures = [aws_lambda_layer_version.framework]
}

run "layers_from_a_build_without_the_glibc_scan_fail_at_plan" {
  command = plan

  variables {
    build_dir = "${var.build_dir}/unscanned"
  }

  expect_failures = [aws_lambda_layer_version.framework]
}

run "alarms_notify_the_platform_topic" {
  command = apply

  assert {
    condition     = alltrue([for m in module.model_endpoint : toset(m.alarm_actions) == toset([aws_sns_topic.alarms[0].arn])])
    error_message = "every alarm must notify the platform's alarm topic (alarms without actions notify nobody)"
  }

  assert {
    condition     = aws_sns_topic.alarms[0].kms_master_key_id == module.registry.kms_key_arn
    error_message = "the alarm topic must be encrypted with the platform key"
  }

  assert {
    condition     = jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement[0].Principal.Service == "cloudwatch.amazonaws.com"
    error_message = "CloudWatch must be allowed to publish the alarms"
  }
}

run "alarms_notify_a_given_topic" {
  command = apply

  variables {
    alarm_topic_arn = "arn:aws:sns:us-east-1:123456789012:ops-pager"
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 0 && alltrue([for m in module.model_endpoint : toset(m.alarm_actions) == toset(["arn:aws:sns:us-east-1:123456789012:ops-pager"])])
    error_message = "a given topic replaces the platform's own"
  }
}

run "reserved_concurrency_is_optional" {
  command = apply

  assert {
    condition     = module.model_endpoint["iris"].reserved_concurrent_executions == -1 && module.model_endpoint["breast-cancer"].reserved_concurrent_executions == 3
    error_message = "a model without reserved_concurrency must be unreserved (-1), one with it reserved"
  }
}

run "decrypt_only_through_the_services_that_hold_the_data" {
  command = apply

  assert {
    condition = jsondecode(module.model_endpoint["iris"].role_policy_json).Statement[2].Condition["StringEquals"]["kms:ViaService"] == [
      "dynamodb.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", "lambda.us-east-1.amazonaws.com"
    ]
    error_message = "kms:Decrypt must be limited to DynamoDB, S3 and Lambda acting for the function"
  }
}

# IAM role names are at most 64 characters: "<prefix>-<model>-role" leaves 58 for prefix and model.
run "names_too_long_for_the_role_fail_at_plan" {
  command = plan

  variables {
    name_prefix = "platform-for-models"
    models      = { "a-model-name-that-is-forty-characters-ab" = { framework = "sklearn" } }
  }

  expect_failures = [var.models]
}

run "jwt_without_issuer_or_audience_fails_at_plan" {
  command = plan

  variables {
    authorization_type = "JWT"
  }

  expect_failures = [var.jwt_issuer, var.jwt_audience]
}

run "a_timeout_past_the_integration_timeout_fails_at_plan" {
  command = plan

  variables {
    models = { iris = { framework = "sklearn", timeout = 30 } }
  }

  expect_failures = [var.models]
}

run "provisioned_concurrency_over_half_the_reserved_fails_at_plan" {
  command = plan

  variables {
    models = { iris = { framework = "sklearn", reserved_concurrency = 3, provisioned_concurrency = 2 } }
  }

  expect_failures = [var.models]
}

# Lambda keeps 100 of the account's concurrency unreserved; new accounts may have a quota of 10.
run "reserving_past_the_account_quota_fails_at_plan" {
  command = plan

  variables {
    account_concurrency_limit = 100
    models                    = { iris = { framework = "sklearn", reserved_concurrency = 1 } }
  }

  expect_failures = [var.models]
}

# Quotas are inputs: the 2 models need 8 routes; with a route quota of 7 the plan names the quota to raise.
run "models_over_the_route_quota_fail_at_plan" {
  command = plan

  variables {
    api_route_quota = 7
  }

  expect_failures = [var.models]
}

run "models_over_the_integration_quota_fail_at_plan" {
  command = plan

  variables {
    api_integration_quota = 1
  }

  expect_failures = [var.models]
}

run "an_integration_quota_past_what_aws_allows_is_refused" {
  command = plan

  variables {
    api_integration_quota = 301
  }

  expect_failures = [var.api_integration_quota]
}

# A model leaving the dedicated tier: its routes go, its function, integration and permission stay for
# requests the API still routes to it (tooling/tier_moves.py removes the entry on a later apply).
run "a_drained_model_keeps_its_function_but_no_route" {
  command = apply

  variables {
    models = {
      iris          = { framework = "sklearn", drain = true }
      breast-cancer = { framework = "xgboost" }
    }
  }

  assert {
    condition     = module.api.route_keys["iris"] == [] && length(module.api.route_keys["breast-cancer"]) == 4
    error_message = "a drained model has no route of its own; the others keep theirs"
  }

  assert {
    condition     = contains(keys(module.model_endpoint), "iris") && contains(keys(module.api.integration_ids), "iris")
    error_message = "a drained model keeps its function and its integration"
  }
}

run "draining_without_the_pool_fails_at_plan" {
  command = plan

  variables {
    models = { iris = { framework = "sklearn", drain = true } }
    pool   = { enabled = false }
  }

  expect_failures = [var.models]
}
