# SnapStart on iris: build the layers for python3.12 first, then
#   make up LAMBDA_RUNTIME=python3.12 VAR_FILE=terraform/examples/snapstart.tfvars
# (the local launcher sets lambda_runtime from the build; on AWS pass -var lambda_runtime=python3.12).
# Each version a rollout publishes is initialised once, model loaded, and cold starts restore it.
models = {
  iris = {
    framework   = "sklearn"
    memory_size = 1024
    snap_start  = true
  }
  breast-cancer = {
    framework               = "xgboost"
    memory_size             = 1024
    alarm_p99_duration_ms   = 500
    provisioned_concurrency = 1 # SnapStart and provisioned concurrency: one or the other per model
  }
  diabetes = {
    framework            = "onnx"
    memory_size          = 1536
    reserved_concurrency = 5
  }
}
