"""``make up``: the whole platform on this machine, from the same Terraform and Lambda package as AWS.

Emulator (moto server) -> terraform apply -> train and register the example models -> roll each out
-> local data plane. Everything stops together.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_platform.dataplane import DataPlane
from local_platform.emulator import DUMMY_CREDENTIALS, Emulator, is_up
from local_platform.frontend import DataPlaneServer
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from tooling.deploy import Deployment
from tooling.packaging import LAYER_FRAMEWORKS, REPO_ROOT, build_runtime, install_runtime

BUILD_DIR = REPO_ROOT / "build" / "lambda"
Say = Callable[[str], None]


def _say(message: str) -> None:
    print(f"[up] {message}", flush=True)


@dataclass
class LocalPlatform:
    """A running local platform."""

    emulator: Emulator
    server: DataPlaneServer
    outputs: dict[str, Any]
    env: dict[str, str]
    deployment: Deployment

    @property
    def url(self) -> str:
        return self.server.url


def platform_env(emulator_url: str, outputs: dict[str, Any]) -> dict[str, str]:
    """The environment under which modelctl (and boto3) talk to the local platform."""
    return {
        **DUMMY_CREDENTIALS,
        contract.ENV_ENDPOINT_URL: emulator_url,
        contract.ENV_REGION: "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        contract.ENV_PLATFORM_NAME: outputs["platform_name"],
        contract.ENV_TABLE: outputs["table_name"],
        contract.ENV_BUCKET: outputs["bucket_name"],
    }


def register_and_roll_out_examples(settings: Settings, state: Path, say: Say) -> dict[str, int]:
    """Train the example models, register each, and send each all traffic. Returns name -> version."""
    from examples.models import train_all
    from model_registry.registry.service import RegistryService
    from model_registry.rollout import Rollouts

    service = RegistryService.from_settings(settings)
    rollouts = Rollouts(service, aws.client_for("lambda", settings), settings.platform_name)
    say("training the example models on scikit-learn's bundled datasets")
    versions = {}
    for example in train_all(state / "examples"):
        record = service.register(
            example.name,
            example.artifact,
            feature_names=example.feature_names,
            metrics=example.metrics,
            description=example.description,
            created_by="make-up",
            progress=False,
            optimize_rows=example.X_test if example.serve_optimized else None,
        )
        lambda_version = rollouts.deploy(example.name, record.version)
        say(f"registered {example.name} v{record.version}, live on Lambda version {lambda_version}")
        versions[example.name] = record.version
    return versions


@contextmanager
def local_platform(
    state_dir: Path,
    *,
    emulator_port: int | None = None,
    port: int = 0,
    build_dir: Path = BUILD_DIR,
    var_files: list[Path] | None = None,
    say: Say = _say,
    api_key: str | None = None,
    aws_call_log: Path | None = None,
) -> Iterator[LocalPlatform]:
    """Bring the platform up from scratch (a fresh emulator each time) and tear it all down after."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("terraform.tfstate", "terraform.tfstate.backup", "packages"):
        path = state_dir / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for name in ("function.zip", *(f"layer-{f}.zip" for f in LAYER_FRAMEWORKS)):
        if not (build_dir / name).exists():
            raise FileNotFoundError(f"{build_dir / name} is missing: run `make build` first")
    runtime = build_runtime(build_dir)  # what the layers were built for
    install_runtime(build_dir, runtime, log=lambda m: say(f"installing the local Lambda runtime: {m}"))
    log_handler = logging.FileHandler(state_dir / "dataplane.log")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger("dataplane").addHandler(log_handler)
    emulator = Emulator(emulator_port, log_path=state_dir / "emulator.log").start()
    server: DataPlaneServer | None = None
    try:
        say(f"emulator (moto server) on {emulator.url}")
        variables = {
            "build_dir": str(build_dir.resolve()),
            "authorization_type": "NONE",
            "lambda_runtime": runtime,
            # No lifecycle rules on the artifact bucket: they expire replaced artifacts after 90 days, which
            # no local run lives to see, and the AWS provider waits ~50 s for them to be consistent on every
            # fresh apply. tests/terraform/test_apply_emulator.py applies them to the emulator.
            "artifact_lifecycle": None,
        }
        deployment = Deployment(
            "local",
            emulator.url,
            state_path=state_dir / "terraform.tfstate",
            var_files=var_files or [],
            variables=variables,
        )
        say("terraform init + apply (the same root module as AWS) ...")
        deployment.init()
        deployment.apply(say=say)
        outputs = deployment.outputs()
        say(
            f"applied: table {outputs['table_name']}, bucket {outputs['bucket_name']}, "
            f"{len(outputs['functions'])} model functions, API {outputs['api_id']}"
        )
        env = platform_env(emulator.url, outputs)
        plane = DataPlane(
            emulator.url,
            outputs["api_id"],
            outputs["bucket_name"],
            state_dir,
            build_dir,
            api_key=api_key,
            aws_call_log=aws_call_log,
        )
        server = DataPlaneServer(plane, port=port).start()
        yield LocalPlatform(emulator, server, outputs, env, deployment)
    finally:
        if server is not None:
            server.stop()
        emulator.stop()


def curl_lines(url: str, manifest: list[dict[str, Any]]) -> list[str]:
    """A working curl command per example model."""
    lines = []
    for entry in manifest:
        body = json.dumps({"instances": entry["sample"][:1]})
        lines.append(
            f"curl -s -X POST {url}/models/{entry['name']}/predict "
            f"-H 'content-type: application/json' -d '{body}'"
        )
    return lines


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handled as Ctrl-C: the platform stops through the same path."""
    raise KeyboardInterrupt


def run_up(emulator_port: int, port: int, state_dir: str, var_files: list[Path] | None = None) -> int:
    """`make up`: start everything, print endpoints, serve until Ctrl-C."""
    import signal
    import time

    state = Path(state_dir).resolve()
    if is_up(f"http://127.0.0.1:{emulator_port}"):
        _say(f"port {emulator_port} already answers: is another `make up` running? (set EMULATOR_PORT)")
        return 1
    # Ctrl-C (even when started in the background, where SIGINT arrives ignored) and SIGTERM both stop
    # everything through the same path.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with local_platform(state, emulator_port=emulator_port, port=port, var_files=var_files) as platform:
            with aws.environment(platform.env):
                register_and_roll_out_examples(Settings.from_env(), state, _say)
            env_file = state / "platform.env"
            env = {**platform.env, "MODEL_PLATFORM_URL": platform.url}
            env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
            manifest = json.loads((state / "examples" / "manifest.json").read_text())
            _say(f"local data plane (API Gateway + Lambda) on {platform.url}")
            for name in platform.outputs["functions"]:
                _say(
                    f"  {name}: POST {platform.url}/models/{name}/predict   "
                    f"POST {platform.url}/v2/models/{name}/infer"
                )
            _say("try:")
            for line in curl_lines(platform.url, manifest):
                print(f"  {line}", flush=True)
            _say(
                f"modelctl from another terminal: `source {env_file}` then `modelctl models`, "
                "or `modelctl --local models` from this folder"
            )
            _say("Ctrl-C stops everything")
            while platform.emulator.process is not None and platform.emulator.process.poll() is None:
                time.sleep(1)
            _say("the emulator stopped unexpectedly")
            return 1
    except KeyboardInterrupt:
        _say("stopped; no process left running")
        return 0
