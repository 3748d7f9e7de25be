# The example models trained by scripts/train_examples.py (make up registers and rolls them out).
models = {
  iris = {
    framework   = "sklearn"
    memory_size = 1024
  }
  breast-cancer = {
    framework               = "xgboost"
    memory_size             = 1024
    alarm_p99_duration_ms   = 500
    provisioned_concurrency = 1 # on the live versions, moved by rollouts
  }
  # Registered with --optimize: served by onnxruntime from a layer without scikit-learn or scipy.
  diabetes = {
    framework            = "onnx"
    memory_size          = 1536
    reserved_concurrency = 5
  }
}
