"""One place for each fact: Terraform, the handler, the layers and the library must agree."""

from __future__ import annotations

import re
import subprocess
import tomllib

from functions import routes
from local_platform.routes import best_match, route_from_key
from model_registry.core import contract
from tests.helpers import REPO_ROOT
from tooling.packaging import BUILD_MANIFEST, DEFAULT_RUNTIME, LAYER_FRAMEWORKS, requirements_file

TERRAFORM = REPO_ROOT / "terraform"


def test_terraform_reads_the_contract_file() -> None:
    root = (TERRAFORM / "main.tf").read_text()
    assert 'jsondecode(file("${path.module}/../model_registry/core/contract.json"))' in root
    # The values Terraform gives each variable are checked on the applied functions (test_apply_emulator).
    assert "local.contract.routes" in root and "local.contract.alias_name" in root


def test_terraform_ignores_the_pinned_version_variable_named_in_the_contract() -> None:
    endpoint = (TERRAFORM / "modules/model_endpoint/main.tf").read_text()
    assert f'environment[0].variables["{contract.ENV_MODEL_VERSION}"]' in endpoint


def _variable_default(path: str, name: str) -> str:
    text = (TERRAFORM / path).read_text()
    block = text[text.index(f'variable "{name}"') :]
    return re.search(r'default\s*=\s*"([^"]+)"', block).group(1)


def test_terraform_and_the_build_agree_on_the_runtime() -> None:
    """Terraform's default lambda_runtime is the contract's, which the layers are built for by default,
    and Terraform reads the runtime and glibc needs of a build from the manifest the build writes."""
    assert DEFAULT_RUNTIME == contract.DEFAULT_LAMBDA_RUNTIME
    assert _variable_default("variables.tf", "lambda_runtime") == contract.DEFAULT_LAMBDA_RUNTIME
    assert (
        _variable_default("modules/model_endpoint/variables.tf", "runtime") == contract.DEFAULT_LAMBDA_RUNTIME
    )
    root = (TERRAFORM / "main.tf").read_text()
    assert f'"${{local.build_dir}}/{BUILD_MANIFEST}"' in root and "local.contract.lambda_runtimes" in root
    assert (
        "--runtime" not in (REPO_ROOT / "Makefile").read_text().split("LAMBDA_RUNTIME ?=")[1].splitlines()[0]
    )


def test_the_default_runtime_runs_on_an_os_with_snap_start_and_a_current_glibc() -> None:
    facts = contract.lambda_runtime(contract.DEFAULT_LAMBDA_RUNTIME)
    assert facts.os == "Amazon Linux 2023" and facts.glibc == "2.34" and facts.snap_start
    assert contract.lambda_runtime("python3.11").glibc == "2.26"  # Amazon Linux 2


def test_every_handler_route_is_reachable_through_an_api_route() -> None:
    """A model's routes reach its dedicated function, and the pool's catch-all routes reach the pool for
    any other model; a dedicated model's literal routes win over the pool's (the most specific match)."""
    dedicated = [route_from_key(t.replace("{name}", "iris"), "mlp-iris") for t in contract.ROUTE_TEMPLATES]
    pool_name = contract.pool_function_name("mlp")
    pool = [route_from_key(t, pool_name) for t in (*contract.ROUTE_TEMPLATES, *contract.POOL_SERVER_ROUTES)]
    server_wide = {
        routes.MODELS,
        routes.V2_SERVER,
        routes.V2_LIVE,
        routes.V2_READY_SERVER,
        routes.V2_REPOSITORY_INDEX,
    }
    for path, method in routes.METHODS.items():
        for model, function in (("iris", "mlp-iris"), ("wine", pool_name)):
            concrete = path.replace("<name>", model).replace("<version>", "3")
            matched = best_match([*dedicated, *pool], method, concrete)
            assert matched, f"{method} {concrete} is not routed"
            assert matched[0].function_name == (pool_name if path in server_wide else function), concrete
    # mlp--pool would be the function of model "-pool", which is not a valid model name
    colliding = contract.pool_function_name("mlp").removeprefix("mlp-")
    assert colliding == "-pool" and not re.fullmatch(contract.MODEL_NAME_PATTERN, colliding)


def test_layers_pin_the_versions_the_project_installs() -> None:
    """Every package a layer pins is pinned to the same version in the project's extras, so the tests
    run the handler on what the function runs (an artifact saved here must load there, too)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pins: dict[str, str] = {}
    for specs in project["project"]["optional-dependencies"].values():
        for spec in specs:
            if "==" in spec:
                name, _, version = spec.partition("==")
                assert pins.setdefault(name, version) == version, f"{name} pinned twice, differently"
    compared = []
    for framework in LAYER_FRAMEWORKS:
        for line in requirements_file(framework).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, version = line.partition("==")
                assert version, f"{requirements_file(framework).name}: {line!r} is not pinned"
                assert name in pins, f"{name} ({framework} layer) has no pinned version in pyproject.toml"
                assert pins[name] == version, f"{name}: layer {version} != project {pins[name]}"
                compared.append(name)
    assert len(compared) >= 14 and {"aws-lambda-powertools", "aws-xray-sdk", "numpy"} <= set(compared)


def test_the_provider_is_pinned_and_its_lock_file_committed() -> None:
    """A deployer's `terraform init` must install the provider release the platform is tested with, not
    the newest one: the root pins it and commits the lock file (the mirror here holds 5.100.0)."""
    versions = (TERRAFORM / "versions.tf").read_text()
    assert re.search(r'version\s*=\s*"~> 5\.100"', versions)
    lock = (TERRAFORM / ".terraform.lock.hcl").read_text()
    assert re.search(r'version\s*=\s*"5\.100\.\d+"', lock) and "h1:" in lock
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "terraform/.terraform.lock.hcl"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    assert tracked.returncode == 0, "terraform/.terraform.lock.hcl is not committed"


def test_the_metric_contract_is_the_one_terraform_and_the_handler_use() -> None:
    root = (TERRAFORM / "main.tf").read_text()
    assert "POWERTOOLS_SERVICE_NAME      = local.contract.metrics.service" in root
    assert "POWERTOOLS_METRICS_NAMESPACE = local.contract.metrics.namespace" in root
    dims = contract.version_dimensions("iris", "3", "7")
    assert dims == {
        "model": "iris",
        "model_version": "3",
        "function_version": "7",
        "service": "model-serving",
    }


def test_every_copy_of_the_model_name_pattern_is_the_contracts() -> None:
    """Python and the root module read it from contract.json; the standalone modules and the OpenAPI
    spec cannot, so their copies are held to it here."""
    from model_registry.core.records import MODEL_NAME_PATTERN

    assert MODEL_NAME_PATTERN.pattern == contract.MODEL_NAME_PATTERN
    assert "can(regex(local.contract.model_name_pattern, k))" in (TERRAFORM / "variables.tf").read_text()
    copies = {
        path: re.findall(r'regex\("(\^\[a-z0-9\][^"]*)"', (TERRAFORM / path).read_text())
        for path in ("modules/api/variables.tf", "modules/model_endpoint/variables.tf")
    }
    copies["api/openapi.yaml"] = re.findall(
        r'pattern: "(\^\[a-z0-9\][^"]*)"', (REPO_ROOT / "api/openapi.yaml").read_text()
    )
    for path, found in copies.items():
        assert found and set(found) == {contract.MODEL_NAME_PATTERN}, (path, found)
    assert re.fullmatch(contract.MODEL_NAME_PATTERN, "breast-cancer")
    assert not re.fullmatch(contract.MODEL_NAME_PATTERN, "-x") and not re.fullmatch(
        contract.MODEL_NAME_PATTERN, "a" * 49
    )


def test_the_framework_lists_are_the_contracts() -> None:
    """Layers (Terraform's framework per model, the build) and what registration accepts (the loaders'
    formats, the CLI): one list each, in contract.json."""
    from model_registry.serving.loaders import FORMATS, OPTIMIZED_FORMATS, REGISTRABLE_FRAMEWORKS

    assert (
        "contains(local.contract.frameworks.layers, m.framework)" in (TERRAFORM / "variables.tf").read_text()
    )
    assert LAYER_FRAMEWORKS == contract.LAYER_FRAMEWORKS
    assert {f.framework for f in FORMATS.values()} == set(REGISTRABLE_FRAMEWORKS)
    assert set(contract.LAYER_FRAMEWORKS) | set(contract.ONNX_ONLY_FRAMEWORKS) == set(
        REGISTRABLE_FRAMEWORKS
    ) | set(OPTIMIZED_FORMATS)
    for framework in contract.LAYER_FRAMEWORKS:
        assert requirements_file(framework).exists(), framework
