"""What runs in the Lambda function besides the handler: framework loaders, request codecs (every input
check) and the model server that answers predictions."""
