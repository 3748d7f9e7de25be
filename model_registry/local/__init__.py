"""The local platform: the AWS emulator (moto server) and the local data plane."""
