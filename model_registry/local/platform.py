"""``make up``: bring the whole platform up on this machine and keep it running until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from model_registry import aws, contract
from model_registry.local.emulator import DUMMY_CREDENTIALS, Emulator, is_up
from model_registry.settings import Settings

TABLE = "mlp-registry"
BUCKET = "model-artifacts-local"


def _say(message: str) -> None:
    print(f"[up] {message}", flush=True)


def platform_env(emulator_url: str) -> dict[str, str]:
    """The environment under which modelctl (and boto3) talk to the local platform."""
    return {
        **DUMMY_CREDENTIALS,
        contract.ENV_ENDPOINT_URL: emulator_url,
        contract.ENV_REGION: "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        contract.ENV_TABLE: TABLE,
        contract.ENV_BUCKET: BUCKET,
    }


def write_env_file(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))


def run_up(emulator_port: int, port: int, state_dir: str) -> int:
    """Start the emulator, provision, register the examples, then wait for Ctrl-C."""
    from model_registry.examples import train_all
    from model_registry.service import RegistryService

    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{emulator_port}"
    if is_up(url):
        _say(f"something already answers on {url}: is another `make up` running? (use --emulator-port)")
        return 1
    emulator = Emulator(emulator_port, log_path=state / "emulator.log").start()
    try:
        env = platform_env(emulator.url)
        os.environ.update(env)
        aws.client.cache_clear()
        settings = Settings.from_env()
        _say(f"emulator (moto server) on {emulator.url}")
        ddb = aws.client_for("dynamodb", settings)
        ddb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": contract.SORT_KEY, "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": contract.SORT_KEY, "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        aws.client_for("s3", settings).create_bucket(Bucket=BUCKET)
        _say("training example models on scikit-learn's bundled datasets")
        service = RegistryService.from_settings(settings)
        for example in train_all(state / "examples"):
            record = service.register(
                example.name,
                example.artifact,
                feature_names=example.feature_names,
                metrics=example.metrics,
                description=example.description,
                created_by="make-up",
                progress=False,
            )
            _say(f"registered {record.model_name} v{record.version}")
        env_file = state / "platform.env"
        write_env_file(env_file, env)
        _say(f"ready. In another terminal: `source {env_file}; modelctl models` or `modelctl --local models`")
        _say("Ctrl-C stops everything")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while emulator.process is not None and emulator.process.poll() is None:
            time.sleep(1)
        _say("the emulator stopped unexpectedly")
        return 1
    except KeyboardInterrupt:
        _say("stopping")
        return 0
    finally:
        emulator.stop()
