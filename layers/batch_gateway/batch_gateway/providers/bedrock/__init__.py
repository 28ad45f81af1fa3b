"""Amazon Bedrock batch inference (Claude): ``batch`` (the model invocation job calls, IAM-signed)
and ``parsing`` (job states and output records into the gateway's models)."""
