"""The platform on one machine, with no AWS account: the AWS emulator (moto server plus the AWS rules it
lacks), and the local data plane that stands in for API Gateway and the Lambda service. Installed with
the ``[local]`` extra; never shipped to Lambda."""
